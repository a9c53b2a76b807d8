"""Code provenance: digests of the twinflow source a workflow step depends on.

Snakemake re-runs a job when its rule's code or params change, but it does not see the
modules a script imports.  Rules therefore pass ``code_digest("twinflow.io.imaging")`` as a
param: the SHA-256 over the source of that module and every twinflow module it imports,
directly or transitively.  Editing one module re-runs exactly the rules whose steps import it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
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


_IMPORT_CACHE: dict = {"path": None, "entries": {}, "dirty": False}


def use_import_cache(path: str | os.PathLike) -> None:
    """Keep each module's parsed import list in the JSON file ``path``, keyed by the module
    file's mtime and size, so that a new process parses only modules edited since (the
    workflow asks for ~20 digests on every Snakemake call; parsing the ~50 modules costs
    ~0.4 s).  The digests themselves are always computed from the current sources."""
    path = Path(path)
    entries = {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    _IMPORT_CACHE.update(path=path, entries=entries if isinstance(entries, dict) else {}, dirty=False)
    _direct_imports.cache_clear()


def _save_import_cache() -> None:
    path = _IMPORT_CACHE["path"]
    if path is None or not _IMPORT_CACHE["dirty"]:
        return
    from twinflow.io.atomic import atomic_path

    try:
        with atomic_path(path, suffix=".tmp") as tmp:
            tmp.write_text(json.dumps(_IMPORT_CACHE["entries"], sort_keys=True), encoding="utf-8")
        _IMPORT_CACHE["dirty"] = False
    except OSError:
        pass                        # a cache only: a read-only working directory is fine


@lru_cache(maxsize=None)
def _direct_imports(name: str) -> tuple[str, ...]:
    path = _module_file(name)
    if path is None:
        return ()
    st = path.stat()
    stamp = [st.st_mtime_ns, st.st_size]
    hit = _IMPORT_CACHE["entries"].get(name) if _IMPORT_CACHE["path"] is not None else None
    if isinstance(hit, dict) and hit.get("stamp") == stamp and isinstance(hit.get("imports"), list):
        return tuple(hit["imports"])
    found = _parse_imports(name, path)
    if _IMPORT_CACHE["path"] is not None:
        _IMPORT_CACHE["entries"][name] = {"stamp": stamp, "imports": list(found)}
        _IMPORT_CACHE["dirty"] = True
    return found


def _parse_imports(name: str, path: Path) -> tuple[str, ...]:
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
    closure = module_closure(*names)
    _save_import_cache()
    for name in sorted(set(closure) | {m for m in shallow if _module_file(m)}):
        path = _module_file(name)
        h.update(name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]
