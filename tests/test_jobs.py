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


def test_benchmark_path_is_the_log_path_under_the_benchmarks_folder():
    env = {"TWINFLOW_LOGS": "results/logs", "TWINFLOW_BENCHMARKS": "results/benchmarks"}
    assert jobs.benchmark_path(["results/logs/ingest_image/P1/V1_T1.log"], env) == \
        "results/benchmarks/ingest_image/P1/V1_T1.tsv"
    assert jobs.benchmark_path(["results/logs/estimate/P1.log"], env) == "results/benchmarks/estimate/P1.tsv"
    absolute = {"TWINFLOW_LOGS": "/data/r/logs", "TWINFLOW_BENCHMARKS": "/data/r/benchmarks"}
    assert jobs.benchmark_path(["/data/r/logs/twin/P1.log"], absolute) == "/data/r/benchmarks/twin/P1.tsv"
    assert jobs.benchmark_path(["elsewhere/P1.log"], env) is None            # not under the logs folder
    assert jobs.benchmark_path(["results/logs"], env) is None
    assert jobs.benchmark_path([], env) is None                              # a job without a log
    assert jobs.benchmark_path(["results/logs/twin/P1.log"], {}) is None     # not run by the workflow


def _run_job(tmp_path, script_text, key, env_extra):
    import os

    script = tmp_path / "job.py"
    script.write_text(script_text)
    env = dict(os.environ, TWINFLOW_LOGS="r/logs", TWINFLOW_BENCHMARKS="r/benchmarks", **env_extra)
    return subprocess.run([sys.executable, str(REPO / "scripts" / "run_job.py"), str(script), key, "--log",
                           "r/logs/rule/P1.log", "--outputs", "--inputs"], cwd=tmp_path, capture_output=True,
                          text=True, env=env)


def _fs_type(path: Path) -> str:
    """Type of the file system that holds ``path`` (longest mount point in /proc/mounts)."""
    best, kind = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and str(path.resolve()).startswith(parts[1].rstrip("/") + "/") and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


def test_runner_writes_a_snakemake_benchmark_table_with_measured_numbers(tmp_path):
    """A job that holds 300 MiB, burns ~0.5 s of CPU and writes 20 MiB: the table has Snakemake's
    columns and numbers that bound what the job did."""
    from snakemake.benchmark import BenchmarkRecord

    key = jobs.SpecStore(tmp_path / jobs.SPEC_DIR).key({"params": {}})
    # the process that starts the job is large, as Snakemake is at 1000 patients: its size must
    # not show up as the job's peak (Linux keeps it in the job's ru_maxrss across exec)
    ballast = bytearray(700 * 2**20)
    ballast[::4096] = b"\x01" * len(range(0, len(ballast), 4096))
    r = _run_job(tmp_path, "import os, time\n"
                           "block = bytearray(300 * 2**20)\n"
                           "for i in range(0, len(block), 4096): block[i] = 1\n"
                           "t = time.process_time()\n"
                           "while time.process_time() - t < 0.5: pass\n"
                           "with open('big.bin', 'wb') as fh:\n"
                           "    fh.write(os.urandom(20 * 2**20)); fh.flush(); os.fsync(fh.fileno())\n", key, {})
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "r/benchmarks/rule/P1.tsv").read_text().splitlines()
    assert lines[0].split("\t") == BenchmarkRecord.get_header()
    row = dict(zip(lines[0].split("\t"), lines[1].split("\t")))
    assert len(lines) == 2
    assert 0.5 <= float(row["s"]) < 30
    assert row["h:m:s"].count(":") == 2
    del ballast
    assert 300 <= float(row["max_rss"]) < 450                  # MiB, the bytearray plus the interpreter
    assert float(row["cpu_time"]) >= 0.5
    assert 0 < float(row["mean_load"]) <= 100 * 2 + 1         # CPU % of wall time (one busy thread)
    assert row["max_uss"] == row["max_pss"] == "NA"
    if Path("/proc/self/io").exists():
        assert float(row["max_vms"]) >= float(row["max_rss"])
        if _fs_type(tmp_path) not in ("tmpfs", "devtmpfs", "ramfs"):   # disk-backed: writes are counted
            assert float(row["io_out"]) >= 19.9


def test_failed_job_leaves_no_benchmark_table(tmp_path):
    key = jobs.SpecStore(tmp_path / jobs.SPEC_DIR).key({"params": {}})
    stale = tmp_path / "r/benchmarks/rule/P1.tsv"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier run\n")
    r = _run_job(tmp_path, "raise RuntimeError('bad input')\n", key, {})
    assert r.returncode != 0
    assert not stale.exists()
