"""Code digests: the import closure decides which stages re-run, and the on-disk import cache
must never change a digest."""

from __future__ import annotations

import json

from twinflow import provenance


def _fresh(path=None):
    provenance.code_digest.cache_clear()
    provenance._IMPORT_CACHE.update(path=None, entries={}, dirty=False)
    provenance._direct_imports.cache_clear()
    if path is not None:
        provenance.use_import_cache(path)


def test_closure_follows_imports():
    _fresh()
    closure = provenance.module_closure("twinflow.models.oncology.calibrate")
    assert "twinflow.models.oncology.growth" in closure and "twinflow" in closure
    assert "twinflow.models.cardiac.arms" not in closure


def test_import_cache_gives_the_same_digests_and_ignores_stale_entries(tmp_path):
    mods = ("twinflow.io.imaging", "twinflow.models.oncology.calibrate", "twinflow.qc")
    _fresh()
    plain = [provenance.code_digest(m) for m in mods]
    cache = tmp_path / "imports.json"
    _fresh(cache)
    assert [provenance.code_digest(m) for m in mods] == plain
    entries = json.loads(cache.read_text())
    assert "twinflow.models.oncology.calibrate" in entries
    # a stale entry (another mtime/size) is re-parsed, a wrong import list never used
    entries["twinflow.models.oncology.calibrate"] = {"stamp": [1, 2], "imports": []}
    cache.write_text(json.dumps(entries))
    _fresh(cache)
    assert [provenance.code_digest(m) for m in mods] == plain
    _fresh()
