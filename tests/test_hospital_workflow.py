"""The hospital rules alone on the demo site, through Snakemake (a Snakefile that includes
only rules/hospital.smk, in a temporary folder with its own config)."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from twinflow.hospital.artefact import verify

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow


def test_hospital_rules_alone_on_the_demo_site(tmp_path):
    site = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["hospital"]["demo_ed"]
    site.update(replications=2, scenarios={"extra_doctor": site["scenarios"]["extra_doctor"]})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"results": "out", "hospital": {"demo_ed": site}}))
    (tmp_path / "Snakefile").write_text(
        f'configfile: "config.yaml"\ninclude: "{REPO / "rules" / "hospital.smk"}"\n\n'
        "rule all:\n    input:\n        tf_hospital.targets(config),\n")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(tmp_path / "Snakefile"), "-d", str(tmp_path), "--cores", "2"]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    out = tmp_path / "out" / "hospital" / "demo_ed"
    sims = sorted(p.relative_to(out).as_posix() for p in (out / "sim").rglob("*.json"))
    assert sims == ["sim/baseline/rep0.json", "sim/baseline/rep1.json",
                    "sim/extra_doctor/rep0.json", "sim/extra_doctor/rep1.json"]
    rep = verify(out / "twin")
    assert rep.ok and rep.resimulated == 4, rep.lines()
    seeds = {json.loads((out / s).read_text())["seed"] for s in sims}
    assert seeds == {site["seed"]}
    assert (tmp_path / "out" / "logs" / "hospital" / "demo_ed" / "fit.log").exists()
    for f in out.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert b"DEMO-" not in (gzip.decompress(data) if f.suffix == ".gz" else data), f
    # nothing left to do: the run is complete and its outputs are up to date
    r = subprocess.run(cmd + ["-n"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in r.stdout + r.stderr
    # a new scenario adds its replications and the gathering jobs, not ingest or the fit
    site["scenarios"]["surge"] = {"arrivals": {"factor": 1.3}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"results": "out", "hospital": {"demo_ed": site}}))
    r = subprocess.run(cmd + ["-n"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    jobs = dict(re.findall(r"^(hospital_\w+)\s+(\d+)$", r.stdout, re.M))
    assert jobs == {"hospital_simulate": "2", "hospital_scenarios": "1", "hospital_twin": "1",
                    "hospital_report": "1"}, r.stdout[-3000:]
