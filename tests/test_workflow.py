"""The workflow end to end: the demo cohort in a temporary folder, error isolation, incrementality."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from twinflow.demo import cohort

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow

CONFIG = """sheets:
  patients: {sheets}/patients.tsv
  imaging: {sheets}/imaging.tsv
  treatments: {sheets}/treatments.tsv
results: out
demo:
  generate: {generate}
  outdir: demo/data
"""


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("wf")
    cohort.write_sheets(wd / "demo")
    (wd / "config.yaml").write_text(CONFIG.format(sheets="demo", generate="true"))
    r = snakemake(wd)
    assert r.returncode == 0, r.stderr[-4000:]
    return wd


def test_demo_cohort_runs_end_to_end(demo_run):
    wd = demo_run
    table = pd.read_csv(wd / "out" / "cohort" / "ingest_qc.tsv", sep="\t")
    assert list(table["patient_id"]) == [p.patient_id for p in cohort.PATIENTS]
    for p in cohort.PATIENTS:
        q = json.loads((wd / "out" / p.patient_id / "ingest" / "qc.json").read_text())
        assert len(q["visits"]) == len(p.visit_days)
        assert set(q["visits"][0]["series"]) == set(cohort.SERIES + cohort.TISSUE_SERIES)
        assert all(set(v["series"]) == set(cohort.SERIES) for v in q["visits"][1:])
        assert q["variants"]["germline"]["n_rows"] == 21
        assert q["treatments"]["n_rt_fractions"] == p.rt_fractions
        for v in q["visits"]:
            for s in cohort.SERIES:
                base = wd / "out" / p.patient_id / "ingest" / "imaging" / v["visit"] / s
                assert base.with_suffix(".png").is_file()
    row = table.set_index("patient_id").loc["ONC002"]
    assert row["n_expert_labels"] == 3 and row["rt_total_gy"] == pytest.approx(40.05)


def test_every_storage_orientation_comes_out_canonical_and_aligned(demo_run):
    """NIfTI RAS, NRRD LPS and NIfTI LAS inputs of the same anatomy give the same RAS volume."""
    wd = demo_run
    masks = []
    for p in cohort.PATIENTS:
        img = nib.load(wd / "out" / p.patient_id / "ingest" / "imaging" / "V1" / "brain_mask.nii.gz")
        assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
        masks.append((np.asarray(img.dataobj) > 0, img.affine))
    for m, aff in masks[1:]:
        assert np.allclose(aff, masks[0][1], atol=1e-4)
        assert np.array_equal(m, masks[0][0])
    # the ingested expert label equals the ground truth label voxel for voxel
    lab = np.asarray(nib.load(wd / "out" / "ONC002" / "ingest" / "imaging" / "V2" / "T1post.label.nii.gz").dataobj)
    truth = np.asarray(nib.load(wd / "demo" / "data" / "truth" / "ONC002" / "V2_label.nii.gz").dataobj)
    assert np.array_equal(lab, truth)


def test_nothing_to_do_on_rerun(demo_run):
    r = snakemake(demo_run, "-n")
    assert r.returncode == 0
    assert "Nothing to be done" in r.stdout + r.stderr


def test_no_identifiers_or_absolute_paths_in_outputs(demo_run):
    wd = demo_run
    needles = [str(wd).encode(), str(REPO).encode()]
    for f in (wd / "out").rglob("*"):
        if f.is_file() and "logs" not in f.parts and "benchmarks" not in f.parts and f.suffix in (".json", ".tsv"):
            data = f.read_bytes()
            assert not any(n in data for n in needles), f


def test_bad_patients_fail_alone_with_one_clear_message(demo_run, tmp_path):
    """Missing file, malformed date, wrong genome build, unknown lab unit: each fails its own
    patient with a message naming patient, file and problem; the good patient finishes."""
    wd = tmp_path
    src = demo_run / "demo" / "data"
    good = src / "ONC002" / "V1"
    (wd / "raw").mkdir()
    (wd / "raw" / "labs_bad.csv").write_text("date,code,value,unit\n2024-01-01,2160-0,1.0,furlongs\n")
    (wd / "raw" / "grch37.vcf").write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=1,length=249250621>\n##contig=<ID=2,length=243199373>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n")
    pats = ("patient_id\ttwin_model\tsex\tage_years\theight_cm\tweight_kg\tgermline_vcf\tgermline_sample\tsomatic_vcf\tlabs\n"
            "GOOD\toncology\tF\t50\t165\t60\t\t\t\t\n"
            "MISSING\toncology\tF\t50\t165\t60\t\t\t\t\n"
            "BADDATE\toncology\tM\t60\t180\t80\t\t\t\t\n"
            "GRCH37\toncology\tM\t60\t180\t80\tgrch37.vcf\tS1\t\t\n"
            "BADUNIT\toncology\tF\t70\t160\t70\t\t\t\tlabs_bad.csv\n")
    img = ("patient_id\tvisit\tdate\tseries\tpath\tlabel_path\n"
           f"GOOD\tV1\t2024-01-01\tT1\t{good / 'T1.nrrd'}\t{good / 'label.nrrd'}\n"
           "MISSING\tV1\t2024-01-01\tT1\tnot_there.nii.gz\t\n"
           f"BADDATE\tV1\t2024-31-01\tT1\t{good / 'T1.nrrd'}\t\n")
    (wd / "raw" / "patients.tsv").write_text(pats)
    (wd / "raw" / "imaging.tsv").write_text(img)
    (wd / "raw" / "treatments.tsv").write_text("patient_id\tdate\tkind\tagent\tdose\tunit\n")
    (wd / "config.yaml").write_text(CONFIG.format(sheets="raw", generate="false"))
    r = snakemake(wd, "--keep-going")
    assert r.returncode != 0
    err = r.stdout + r.stderr
    assert "patient MISSING: not_there.nii.gz: " in err
    assert "patient BADDATE: raw/imaging.tsv: row 4: malformed date '2024-31-01'" in err
    assert "patient GRCH37: grch37.vcf: " in err and "GRCh37" in err
    assert "patient BADUNIT: labs_bad.csv: " in err and "furlongs" in err
    out = wd / "out"
    assert (out / "GOOD" / "ingest" / "qc.json").is_file()
    for bad in ("MISSING", "BADDATE", "GRCH37", "BADUNIT"):
        assert not (out / bad / "ingest" / "qc.json").exists()
        leftovers = [f for f in (out / bad).rglob("*") if f.is_file()] if (out / bad).exists() else []
        assert leftovers == [], leftovers


@pytest.mark.parametrize("bad_id", ["../escape", "a b"])
def test_unsafe_id_stops_the_run_before_any_job(tmp_path, bad_id):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "patients.tsv").write_text(
        "patient_id\ttwin_model\tsex\tage_years\theight_cm\tweight_kg\n" f"{bad_id}\toncology\tF\t50\t165\t60\n")
    (tmp_path / "raw" / "imaging.tsv").write_text("patient_id\tvisit\tdate\tseries\tpath\n")
    (tmp_path / "raw" / "treatments.tsv").write_text("patient_id\tdate\tkind\tagent\tdose\tunit\n")
    (tmp_path / "config.yaml").write_text(CONFIG.format(sheets="raw", generate="false"))
    r = snakemake(tmp_path, "-n")
    assert r.returncode != 0
    assert "patient_id" in r.stdout + r.stderr and "is not allowed" in r.stdout + r.stderr
    assert not (tmp_path / "out").exists()
