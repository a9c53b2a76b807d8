"""The shell: job runner (twinflow/jobs.py): spec files by content, and a script sees the same
snakemake object as under script:."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from twinflow import jobs
from twinflow.sheets import ImageRow

REPO = Path(__file__).resolve().parents[1]


def test_spec_store_is_content_addressed(tmp_path):
    store = jobs.SpecStore(tmp_path / "specs")
    row = ImageRow("P1", "V1", "2024-01-01", "T1", "a.nii.gz", "a.nii.gz", roi="1,2,3,4,5,6")
    spec = {"params": {"row": row, "ctx": {"b": 1, "a": [1.5, None, "x"]}}, "output_names": ["nifti"]}
    k1 = store.key(spec)
    k2 = jobs.SpecStore(tmp_path / "specs").key({"output_names": ["nifti"], "params": {"ctx": {"a": [1.5, None, "x"], "b": 1},
                                                                                        "row": row}})
    assert k1 == k2 and len(k1) == 64                                   # canonical: key order is irrelevant
    assert store.key({**spec, "output_names": ["qc"]}) != k1             # any change, another key
    assert sorted(p.name for p in (tmp_path / "specs").iterdir()) == sorted([f"{k1}.json",
                                                                           f"{store.key({**spec, 'output_names': ['qc']})}.json"])
    back = jobs.load(k1, tmp_path / "specs")
    assert back["params"]["row"] == row and back["params"]["ctx"] == {"a": [1.5, None, "x"], "b": 1}


def test_spec_key_writes_its_file_only_when_formatted(tmp_path):
    import pickle

    store = jobs.SpecStore(tmp_path / "specs")
    text = jobs.dumps({"params": {"x": 1}})
    key = jobs.SpecKey(lambda: text, store)
    assert key == jobs.digest(text) and repr(key) == repr(jobs.digest(text))     # what Snakemake records
    assert not (tmp_path / "specs").exists()                                     # DAG building writes nothing
    assert f"run {key} now" == f"run {jobs.digest(text)} now"
    assert (tmp_path / "specs" / f"{key}.json").read_text() == text              # formatting the command does
    assert ((tmp_path / "specs" / f"{key}.json").stat().st_mode & 0o777) == 0o600  # sheet rows: owner only
    (tmp_path / "specs" / f"{key}.json").unlink()                                 # deleted mid-run: written again
    f"{key}"
    assert (tmp_path / "specs" / f"{key}.json").read_text() == text
    assert type(pickle.loads(pickle.dumps(key))) is str
    dry = jobs.SpecKey(lambda: jobs.dumps({"params": {"x": 2}}), store, write=False)
    assert format(dry) == str(dry) and not (tmp_path / "specs" / f"{dry}.json").exists()


def test_load_refuses_a_changed_or_missing_spec(tmp_path):
    store = jobs.SpecStore(tmp_path)
    k = store.key({"params": {"x": 1}})
    (tmp_path / f"{k}.json").write_text('{"params":{"x":2}}')
    with pytest.raises(SystemExit, match="does not match its key"):
        jobs.load(k, tmp_path)
    with pytest.raises(SystemExit, match="missing"):
        jobs.load("0" * 64, tmp_path)
    with pytest.raises(SystemExit, match="malformed"):
        jobs.load("../etc/passwd", tmp_path)


def test_script_sees_params_wildcards_and_named_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    row = ImageRow("P1", "V1", "2024-01-01", "T1", "a.nii.gz", "a.nii.gz", roi="1,2,3,4,5,6")
    key = jobs.SpecStore().key({"params": {"row": row, "ctx": {"a": 1}, "code": "abc"}, "output_names": ["nifti", "qc"],
                                "wildcards": {"patient": "P1", "visit": "V0"}})
    script = tmp_path / "echo.py"
    script.write_text("import json\nsm = snakemake\n"
                      "out = dict(row=[sm.params.row.visit, sm.params.row.roi], ctx=sm.params.ctx, code=sm.params['code'],\n"
                      "           nifti=sm.output.nifti, qc=sm.output.qc, all_out=list(sm.output), image=sm.input.image,\n"
                      "           inputs=list(sm.input), patient=sm.wildcards.patient, visit=sm.wildcards.visit,\n"
                      "           threads=sm.threads, log=sm.log[0])\n"
                      "open(sm.output.nifti, 'w').write(json.dumps(out))\n")
    out = tmp_path / "o.json"
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    jobs.main([str(script), key, "--log", "x.log", "--wildcards", "visit=V1", "--outputs", str(out), "q.json",
               "--inputs", "image=img.nii.gz", "odd=-odd name=x"])
    got = json.loads(out.read_text())
    assert got == {"row": ["V1", "1,2,3,4,5,6"], "ctx": {"a": 1}, "code": "abc", "nifti": str(out), "qc": "q.json",
                   "all_out": [str(out), "q.json"], "image": "img.nii.gz", "inputs": ["img.nii.gz", "-odd name=x"],
                   "patient": "P1", "visit": "V1", "threads": 2, "log": "x.log"}


def test_script_failure_exit_code_passes_through(tmp_path):
    key = jobs.SpecStore(tmp_path / jobs.SPEC_DIR).key({"params": {}})
    script = tmp_path / "fail.py"
    script.write_text("raise SystemExit(1)\n")
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "run_job.py"), str(script), key, "--log",
                        "--wildcards", "patient=P1", "--outputs", "--inputs"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 1, r.stderr


def test_argument_errors_are_reported(tmp_path):
    with pytest.raises(SystemExit, match="usage"):
        jobs.parse_args(["script.py"])
    with pytest.raises(SystemExit, match="before any option"):
        jobs.parse_args(["script.py", "k" * 64, "stray"])
    script, key, opts = jobs.parse_args(["s.py", "ab", "--log", "--outputs", "o 1", "--inputs", "x=a=b"])
    assert opts["--log"] == [] and opts["--outputs"] == ["o 1"] and jobs._pairs(opts["--inputs"], "in") == {"x": "a=b"}


def test_shell_commands_hold_no_absolute_path():
    """Snakemake re-runs a shell: job when its command text changes; moving the checkout or
    the venv must not re-run a cohort."""
    text = "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    assert text.count("run_job(") >= 11
    common = (REPO / "rules" / "common.smk").read_text()
    tmpl = common.split("def run_job(")[1].split("def job_params")[0]
    assert "$TWINFLOW_PYTHON" in tmpl and "$TWINFLOW_SCRIPTS" in tmpl and "basedir" not in tmpl
