"""The trial rules (rules/trials.smk) end to end on a plug-in model: a toy twin built by the
workflow is the source of a trial whose arms run as chunk jobs; the artefact verifies with
``twinflow verify``, the cohort index links the report, and a changed arm re-runs the trial's
simulations but not the twin."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from test_plugin import REPO, toy_cohort

pytestmark = pytest.mark.workflow


def snakemake(tmp_path, env, *extra):
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", *extra],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def test_trial_rules_scatter_gather_verify(tmp_path):
    env = toy_cohort(tmp_path)
    trial = {"model": "toy", "arms": [{"name": "none"}, {"name": "resect", "regimen": {"kill_fraction": 0.5}}],
             "n_per_arm": 30, "chunk_size": 12, "endpoints": ["doubling", "volume_ml_end"],
             "eligibility": [{"field": "age_years", "max": 70}],
             "analysis": {"power": {"sizes": [5, 10], "replicates": 20}}}
    cfg = {"sheets": {k: f"raw/{k}.tsv" for k in ("patients", "imaging", "treatments")}, "results": "out",
           "trials": {"toy_trial": trial}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(tmp_path, env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    out = tmp_path / "out" / "trials" / "toy_trial"
    # three chunks per arm (ceil(30 / 12)), each its own job
    assert sorted(p.relative_to(out / "chunks").as_posix() for p in (out / "chunks").rglob("*.parquet")) == \
        [f"{a}/{k}.parquet" for a in ("none", "resect") for k in range(3)]
    doc = json.loads((out / "trial" / "trial.json").read_text())
    assert doc["flow"]["randomised"] == {"none": 30, "resect": 30}
    assert doc["sources"][0]["twin"] == "../../../TOY1/twin"
    # the sheet columns a trial keeps: numbers and a few text columns, never paths
    assert doc["sources"][0]["row"] == {"patient_id": "TOY1", "twin_model": "toy", "sex": "F", "age_years": 40,
                                        "height_cm": 170, "weight_kg": 65}
    # removing half the lesion delays doubling by ln(2)/r: the hazard ratio is far below 1
    hr = doc["analysis"]["endpoints"]["doubling"]["comparisons"][0]
    assert hr["estimate"] < 0.2 and hr["ci_high"] < 1
    pts = pd.read_parquet(out / "trial" / "patients.parquet")
    assert len(pts) == 60 and (pts["status"] == "ok").all()
    v = subprocess.run([sys.executable, "-m", "twinflow.cli", "verify", str(out / "trial"), "--all-patients"],
                       env=env, capture_output=True, text=True)
    assert v.returncode == 0 and "60 patient(s) re-simulated identically" in v.stdout, v.stdout + v.stderr
    index = (tmp_path / "out" / "cohort" / "index.html").read_text()
    assert 'href="../trials/toy_trial/report.html"' in index
    # a changed arm re-runs the trial's jobs, not the twin's
    trial["arms"][1]["regimen"]["kill_fraction"] = 0.6
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    dry = snakemake(tmp_path, env, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = dry.stdout
    assert "trial_simulate" in jobs and "trial_assemble" in jobs
    for rule in ("estimate", "simulate", "build_twin"):
        assert f"rule {rule}:" not in jobs, rule
    # a typo in a trial is refused before any job runs
    trial["arms"][1]["regimen"] = {"kill_fractio": 0.6}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    bad = snakemake(tmp_path, env, "-n")
    assert bad.returncode != 0
    assert "trials.toy_trial.arms.1.regimen.kill_fractio: unknown key; did you mean 'kill_fraction'?" in bad.stderr
