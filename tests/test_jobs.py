"""The shell: job runner (twinflow/jobs.py): a script sees the same snakemake object."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from twinflow import jobs
from twinflow.sheets import ImageRow

REPO = Path(__file__).resolve().parents[1]


def test_spec_round_trip_and_canonical_json(tmp_path, monkeypatch):
    row = ImageRow("P1", "V1", "2024-01-01", "T1", "a.nii.gz", "a.nii.gz", roi="1,2,3,4,5,6")
    params = {"row": jobs.dumps(row), "ctx": jobs.dumps({"b": 1, "a": [1.5, None, "x"]}), "code": jobs.dumps("abc")}
    s = jobs.spec({"patient": "P1", "visit": "V1"}, params, input_names=("image",), output_names=("nifti", "qc"))
    assert s == jobs.spec({"visit": "V1", "patient": "P1"}, dict(reversed(list(params.items()))),
                          input_names=("image",), output_names=("nifti", "qc"))        # canonical
    script = tmp_path / "echo.py"
    script.write_text("import json\nsm = snakemake\n"
                      "out = dict(row=[sm.params.row.visit, sm.params.row.roi], ctx=sm.params.ctx, code=sm.params['code'],\n"
                      "           nifti=sm.output.nifti, qc=sm.output.qc, all_out=list(sm.output), image=sm.input.image,\n"
                      "           inputs=list(sm.input), patient=sm.wildcards.patient, threads=sm.threads, log=sm.log[0])\n"
                      "open(sm.output.nifti, 'w').write(json.dumps(out))\n")
    out = tmp_path / "o.json"
    monkeypatch.setattr(sys, "stdin", io.StringIO(s))
    jobs.main([str(script), "2", "x.log", "--outputs", str(out), "q.json", "--inputs", "img.nii.gz", "-odd name"])
    got = json.loads(out.read_text())
    assert got == {"row": ["V1", "1,2,3,4,5,6"], "ctx": {"a": [1.5, None, "x"], "b": 1}, "code": "abc",
                   "nifti": str(out), "qc": "q.json", "all_out": [str(out), "q.json"], "image": "img.nii.gz",
                   "inputs": ["img.nii.gz", "-odd name"], "patient": "P1", "threads": 2, "log": "x.log"}


def test_script_failure_exit_code_passes_through(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text("raise SystemExit(1)\n")
    spec = jobs.spec({"patient": "P1"}, {})
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "run_job.py"), str(script), "1", "",
                        "--outputs", "--inputs"], input=spec, text=True, capture_output=True)
    assert r.returncode == 1


def test_shell_commands_hold_no_absolute_path():
    """Snakemake re-runs a shell: job when its command text changes; moving the checkout or
    the venv must not re-run a cohort."""
    text = "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    assert text.count("run_job(") >= 11
    from_common = (REPO / "rules" / "common.smk").read_text()
    tmpl = from_common.split("def run_job(script):")[1].split("def job_params")[0]
    assert "$TWINFLOW_PYTHON" in tmpl and "$TWINFLOW_SCRIPTS" in tmpl and "basedir" not in tmpl
