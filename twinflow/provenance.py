"""Code provenance: digests of the source a workflow step depends on.

Snakemake re-runs a job when its rule's code or params change, but it does not see the
modules a script imports.  Rules therefore pass ``code_digest("twinflow.io.imaging")`` as a
param: the SHA-256 over the source of that module and every module of the same packages it
imports, directly or transitively.  Editing one module re-runs exactly the rules whose steps
import it.  Imports are followed inside twinflow and inside the top-level package of each
named module (a twin-model plug-in shipped as its own package); third-party libraries are
covered by the software versions recorded with every twin, not by these digests.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
PACKAGE = "twinflow"


@lru_cache(maxsize=None)
def _module_file(name: str) -> Path | None:
    """The source file of a module, without importing it (twinflow's own) or by its import spec."""
    parts = name.split(".")
    if parts[0] == PACKAGE:
        rel = Path(*parts[1:]) if len(parts) > 1 else Path()
        for cand in (PACKAGE_ROOT / rel.with_suffix(".py") if len(parts) > 1 else None, PACKAGE_ROOT / rel / "__init__.py"):
            if cand is not None and cand.is_file():
                return cand
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None) if spec else None
    return Path(origin) if origin and origin.endswith(".py") and Path(origin).is_file() else None


@lru_cache(maxsize=None)
def _direct_imports(name: str, packages: frozenset[str]) -> tuple[str, ...]:
    """Modules of ``packages`` that module ``name`` imports (and their parent packages)."""
    path = _module_file(name)
    if path is None:
        return ()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in packages)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # relative import: resolve against this module's package
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] not in packages:
                continue
            found.add(mod)
            # "from twinflow.io import imaging" imports a submodule
            found.update(f"{mod}.{a.name}" for a in node.names if _module_file(f"{mod}.{a.name}"))
    # parents' __init__ run on import too
    parents = set()
    for mod in found:
        parts = mod.split(".")
        parents.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return tuple(sorted(m for m in found | parents if _module_file(m) is not None))


def module_closure(*names: str) -> list[str]:
    """The named modules plus every module of their packages (and twinflow's) they import, sorted."""
    packages = frozenset({PACKAGE} | {n.split(".")[0] for n in names})
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen or _module_file(name) is None:
            continue
        seen.add(name)
        stack.extend(_direct_imports(name, packages))
    return sorted(seen)


@lru_cache(maxsize=None)
def code_digest(*names: str, shallow: tuple[str, ...] = ()) -> str:
    """SHA-256 (hex, first 16 characters) over the source of the modules' import closure.

    ``shallow`` modules are hashed by their own source only, without following their imports
    (a twin model's plug-in module, whose stages each import different code)."""
    h = hashlib.sha256()
    for name in sorted(set(module_closure(*names)) | {m for m in shallow if _module_file(m)}):
        path = _module_file(name)
        h.update(name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


@lru_cache(maxsize=None)
def data_digest(subdir: str) -> str:
    """SHA-256 (hex, first 16 characters) over the files of a package-data folder of twinflow
    (e.g. ``pgx/data``: allele definitions), so that a changed table re-runs what reads it."""
    h = hashlib.sha256()
    root = PACKAGE_ROOT / subdir
    for f in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]
