"""Code digests: the import closure decides which stages re-run."""

from __future__ import annotations

import sys

from twinflow import provenance


def test_closure_follows_imports():
    closure = provenance.module_closure("twinflow.models.oncology.calibrate")
    assert "twinflow.models.oncology.growth" in closure and "twinflow" in closure
    assert "twinflow.models.cardiac.arms" not in closure


def test_digest_changes_with_an_imported_module_only(tmp_path, monkeypatch):
    """A plug-in package outside twinflow: editing a module it imports changes its digest,
    editing an unrelated module of the same package does not."""
    pkg = tmp_path / "labmodel"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text("from labmodel import solver\nimport numpy\n")
    (pkg / "solver.py").write_text("K = 1\n")
    (pkg / "unrelated.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def digest():
        for f in (provenance.code_digest, provenance._module_file, provenance._direct_imports):
            f.cache_clear()
        return provenance.code_digest("labmodel.model")

    try:
        assert provenance.module_closure("labmodel.model") == ["labmodel", "labmodel.model", "labmodel.solver"]
        d0 = digest()
        (pkg / "unrelated.py").write_text("X = 2\n")
        assert digest() == d0
        (pkg / "solver.py").write_text("K = 2\n")
        assert digest() != d0
    finally:
        sys.modules.pop("labmodel", None)
        for f in (provenance.code_digest, provenance._module_file, provenance._direct_imports):
            f.cache_clear()
