"""Code provenance: digests of the twinflow source a workflow step depends on.

Snakemake re-runs a job when its rule's code or params change, but it does not see the
modules a script imports.  Rules therefore pass ``code_digest("twinflow.io.imaging")`` as a
param: the SHA-256 over the source of that module and every twinflow module it imports,
directly or transitively.  Editing one module re-runs exactly the rules whose steps import it.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
PACKAGE = "twinflow"


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    if len(parts) == 1:
        return PACKAGE_ROOT / "__init__.py"
    rel = Path(*parts[1:])
    for cand in (PACKAGE_ROOT / rel.with_suffix(".py"), PACKAGE_ROOT / rel / "__init__.py"):
        if cand.is_file():
            return cand
    return None


@lru_cache(maxsize=None)
def _direct_imports(name: str) -> tuple[str, ...]:
    path = _module_file(name)
    if path is None:
        return ()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # relative import: resolve against this module's package
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != PACKAGE:
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
    """The named twinflow modules plus every twinflow module they import, sorted."""
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen or _module_file(name) is None:
            continue
        seen.add(name)
        stack.extend(_direct_imports(name))
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
