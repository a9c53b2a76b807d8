"""Write and read twin artefacts (format documented in docs/twin-artefact.md).

A twin lives in ``<results>/<patient_id>/twin/``:

* ``twin.json``   the entry point (schema: ``twinflow/twin/twin.schema.json``)
* ``maps/``       NIfTI maps the model needs to re-simulate (e.g. initial density, tissue)
* ``inputs/``     small derived inputs the model needs (schedules, PK parameters) as JSON
* ``results/``    simulation outputs (TSV/JSON), each re-creatable by ``twinflow verify``
* ``plots/``      figures (PNG), hashed but not re-created by verify

``twin.json`` carries a ``manifest`` with the SHA-256 of every other file in the folder.
The folder is written under a temporary name and renamed into place, so a failed build
never leaves a half-written twin.  Nothing in it depends on time, host, user or absolute
paths: two runs from the same inputs give byte-identical twins.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from twinflow.io.atomic import dumps_json

FORMAT = "twinflow.twin"
FORMAT_VERSION = "2.0.0"
ENTRY = "twin.json"
SCHEMA = Path(__file__).with_name("twin.schema.json")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(dumps_json(obj).encode()).hexdigest()


def input_record(role: str, path: str | Path, display: str) -> dict:
    """An input file (or DICOM directory) by role, sheet-relative path, size and SHA-256.

    A directory is hashed as the SHA-256 of the sorted ``name\\0sha256\\n`` lines of its files.
    """
    p = Path(path)
    if p.is_dir():
        lines, size = [], 0
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            lines.append(f"{f.relative_to(p).as_posix()}\0{sha256_file(f)}\n")
            size += f.stat().st_size
        digest = hashlib.sha256("".join(lines).encode()).hexdigest()
        return {"role": role, "path": display, "kind": "directory", "n_files": len(lines), "size": size, "sha256": digest}
    return {"role": role, "path": display, "kind": "file", "size": p.stat().st_size, "sha256": sha256_file(p)}


class TwinBuilder:
    """Collect files into a staging folder beside the target, then :meth:`commit`: the entry
    document with the manifest is written and the folder renamed into place.  A patient twin
    by default; other artefacts (hospital twin, trial) name their entry file and format."""

    def __init__(self, twin_dir: str | Path, *, entry: str = ENTRY, format: str = FORMAT,
                 format_version: str = FORMAT_VERSION):
        self.entry, self.format, self.format_version = entry, format, format_version
        self.twin_dir = Path(twin_dir)
        self.twin_dir.parent.mkdir(parents=True, exist_ok=True)
        self.stage = Path(tempfile.mkdtemp(prefix=f".{self.twin_dir.name}.", dir=self.twin_dir.parent))

    def path(self, rel: str) -> Path:
        p = self.stage / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def add_bytes(self, rel: str, data: bytes) -> str:
        self.path(rel).write_bytes(data)
        return rel

    def add_json(self, rel: str, obj: Any) -> str:
        return self.add_bytes(rel, dumps_json(obj).encode())

    def add_file(self, rel: str, src: str | Path) -> str:
        shutil.copyfile(src, self.path(rel))
        return rel

    def manifest(self) -> dict[str, str]:
        files = sorted(f for f in self.stage.rglob("*") if f.is_file())
        return {f.relative_to(self.stage).as_posix(): sha256_file(f) for f in files
                if f.relative_to(self.stage).as_posix() != self.entry}

    def commit(self, doc: dict) -> dict:
        doc = dict(doc)
        doc["format"] = self.format
        doc["format_version"] = self.format_version
        doc["manifest"] = self.manifest()
        (self.stage / self.entry).write_text(dumps_json(doc), encoding="utf-8")
        for f in self.stage.rglob("*"):
            os.chmod(f, 0o755 if f.is_dir() else 0o644)
        os.chmod(self.stage, 0o755)
        old = None
        if self.twin_dir.exists():
            old = self.twin_dir.with_name(self.stage.name + ".old")
            os.replace(self.twin_dir, old)
        os.replace(self.stage, self.twin_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return doc

    def abort(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)

    def __enter__(self) -> "TwinBuilder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def load(twin_dir: str | Path) -> dict:
    return json.loads((Path(twin_dir) / ENTRY).read_text(encoding="utf-8"))


def schema() -> dict:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


def schema_problems(obj: Any, schema_doc: dict, prefix: str = "") -> list[str]:
    """Problems of ``obj`` against a JSON schema, one line each (empty when valid)."""
    import jsonschema

    v = jsonschema.Draft202012Validator(schema_doc)
    return [f"{prefix}{'/'.join(str(x) for x in e.absolute_path) or '<root>'}: {e.message}"
            for e in sorted(v.iter_errors(obj), key=lambda e: list(e.absolute_path))]


def validate(doc: dict) -> list[str]:
    """Schema problems of a twin.json document (empty when valid): the artefact's own schema,
    and the model's ``results_schema`` for ``model_results``."""
    problems = schema_problems(doc, schema())
    name = (doc.get("model") or {}).get("name") if isinstance(doc, dict) else None
    if not problems and name:
        from twinflow.models import registry

        try:
            model = registry.model_class(name)
        except registry.UnknownModel as exc:
            return [f"model/name: {exc}"]
        problems += schema_problems(doc["model_results"], model.results_schema, "model_results/")
    return problems
