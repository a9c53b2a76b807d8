"""A new kind of twin is one package.

A toy model (tests/plugins/toytwin, exponential lesion growth) is registered for the test
the way a lab's own pip package registers its model: a distribution on the Python path whose
entry point in the group ``twinflow.models`` names the model class.  It then runs the whole
workflow -- segment -> estimate -> simulate -> twin artefact -> ``twinflow verify`` -> report
-> cohort summary -- with no edit anywhere in twinflow.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PLUGIN = Path(__file__).resolve().parent / "plugins" / "toytwin"
R_TRUE = 0.02                      # growth rate per day of the generated lesion
DAYS = (0, 20, 40, 60)
pytestmark = pytest.mark.workflow


def install_plugin(site: Path) -> None:
    """The plug-in as an installed distribution: its package and a dist-info with the entry point."""
    shutil.copytree(PLUGIN, site / "toytwin", ignore=shutil.ignore_patterns("__pycache__"))
    dist = site / "toytwin-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toytwin\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[twinflow.models]\ntoy = toytwin.model:ToyTwin\n")


def lesion(path: Path, volume_mm3: float) -> None:
    """A sphere of the given volume on a 0.5 mm grid, partial-volume edge (threshold 0.5 = radius)."""
    n, h = 72, 0.5
    radius = (3.0 * volume_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0)
    c = (np.arange(n) - (n - 1) / 2.0) * h
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    a = np.clip((radius - np.sqrt(x * x + y * y + z * z)) / h + 0.5, 0.0, 1.0).astype(np.float32)
    nib.save(nib.Nifti1Image(a, np.diag([h, h, h, 1.0])), str(path))


def toy_cohort(tmp_path: Path) -> dict:
    """The plug-in installed under tmp_path/site and a one-patient toy cohort under tmp_path/raw;
    returns the environment that puts the plug-in on the path."""
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")]))
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = []
    for i, day in enumerate(DAYS):
        lesion(raw / f"v{i}.nii.gz", 900.0 * math.exp(R_TRUE * day))
        date = (np.datetime64("2025-01-06") + np.timedelta64(day, "D")).astype(str)
        rows.append(f"TOY1\tV{i + 1}\t{date}\tLESION\tv{i}.nii.gz\n")
    (raw / "patients.tsv").write_text("patient_id\ttwin_model\tsex\tage_years\theight_cm\tweight_kg\n"
                                      "TOY1\ttoy\tF\t40\t170\t65\n")
    (raw / "imaging.tsv").write_text("patient_id\tvisit\tdate\tseries\tpath\n" + "".join(rows))
    (raw / "treatments.tsv").write_text("patient_id\tdate\tkind\tagent\tdose\tunit\n")
    return env


def test_a_plugin_model_runs_the_whole_workflow(tmp_path):
    env = toy_cohort(tmp_path)
    cfg = {"sheets": {k: f"raw/{k}.tsv" for k in ("patients", "imaging", "treatments")}, "results": "out",
           "models": {"toy": {"simulate": {"arms": [{"name": "none", "kill_fraction": 0.0},
                                                    {"name": "resection", "kill_fraction": 0.9}]}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                        "--configfile", str(tmp_path / "config.yaml"), "--cores", "2"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    out = tmp_path / "out"
    twin = json.loads((out / "TOY1" / "twin" / "twin.json").read_text())
    assert twin["model"]["name"] == "toy"
    assert twin["parameters"]["r_per_day"]["value"] == pytest.approx(R_TRUE, rel=0.05)
    assert twin["parameters"]["r_per_day"]["identifiable"] is True
    assert twin["config"]["resolved"]["models"]["toy"]["simulate"]["horizon_days"] == 30   # its schema's default
    v = subprocess.run([sys.executable, "-m", "twinflow.cli", "verify", str(out / "TOY1" / "twin")],
                       env=env, capture_output=True, text=True)
    assert v.returncode == 0 and "1 re-simulated file(s) byte-identical" in v.stdout, v.stdout + v.stderr
    report = (out / "TOY1" / "report.html").read_text()
    assert "Lesion volumes" in report and "Nothing to show" not in report        # empty sections are left out
    table = pd.read_csv(out / "cohort" / "summary" / "toy.tsv", sep="\t")
    assert list(table.columns) == ["patient_id", "growth_rate_per_day", "n_visits"]
    assert table["n_visits"].tolist() == [4]
    assert "toy twins (1)" in (out / "cohort" / "index.html").read_text()
    # a misspelt option of the plug-in's own config section is refused before any job runs
    cfg["models"]["toy"]["simulate"]["horizon_dayz"] = 10
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                        "--configfile", str(tmp_path / "config.yaml"), "-n"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "models.toy.simulate.horizon_dayz: unknown key; did you mean 'horizon_days'?" in r.stderr
