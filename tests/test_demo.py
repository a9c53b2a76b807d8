"""The built-in demo cohort: committed sheets, ground truth, determinism."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from twinflow.demo import cohort
from twinflow.io.labs import read_labs
from twinflow.io.variants import read_variants

REPO = Path(__file__).resolve().parents[1]


def test_committed_demo_sheets_are_what_the_generator_writes():
    for name, text in cohort.sheets_text("data").items():
        assert (REPO / "demo" / name).read_text() == text, f"demo/{name} is stale: run `twinflow demo demo --sheets-only`"


def test_demo_cohort_shape():
    assert len(cohort.PATIENTS) >= 3
    assert all(len(p.visit_days) >= 3 for p in cohort.PATIENTS)
    assert len({p.fmt for p in cohort.PATIENTS}) == 3           # NIfTI RAS, NRRD LPS, NIfTI LAS
    # Stupp schedule: 30 weekday fractions of 2 Gy, temozolomide every day from first to last fraction
    p = cohort.PATIENTS[0]
    rt = cohort.rt_days(p)
    assert len(rt) == 30 and rt[0] == p.rt_start_day and rt[-1] - rt[0] == 39
    conc = [d for d, mg in cohort.tmz_doses(p) if mg == 75.0]
    assert conc == list(range(rt[0], rt[-1] + 1))


@pytest.fixture(scope="module")
def one_patient(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    p = cohort.PATIENTS[1]
    cohort.generate(d, patients=(p,), cardiac=False, pregnancy=False)
    return d, p


def test_generated_patient_matches_truth(one_patient):
    d, p = one_patient
    truth = json.loads((d / "truth" / p.patient_id / "truth.json").read_text())
    assert truth["parameters"]["d_w_mm2_day"] == p.params.d_w_mm2_day
    assert truth["treatment"]["rt_days"] == cohort.rt_days(p)
    # the expert label written for the sheet equals the truth label (same physical grid)
    lab_truth = np.asarray(nib.load(d / "truth" / p.patient_id / "V2_label.nii.gz").dataobj)
    vox_ml = float(np.prod(truth["grid"]["spacing_mm"])) / 1000
    v2 = truth["visits"][1]
    assert (lab_truth == 1).sum() * vox_ml == pytest.approx(v2["enhancing_ml"])
    assert v2["enhancing_ml"] > 1.0 and v2["t2_ml"] > v2["enhancing_ml"]
    # germline VCF carries the given genotypes at the real positions
    gv = read_variants(d / p.patient_id / "germline.vcf.gz", sample=p.patient_id)
    het = set(gv.loc[gv["alt_dosage"] == 1, "id"])
    hom = set(gv.loc[gv["alt_dosage"] == 2, "id"])
    assert het == {k for k, v in p.germline.items() if v in ("0/1", "0|1", "1|0")}
    assert hom == {k for k, v in p.germline.items() if v in ("1/1", "1|1")}
    # labs come back in canonical units
    labs = read_labs(d / p.patient_id / "labs.csv")
    cre = labs.loc[labs["analyte"] == "creatinine", "value"].tolist()
    assert cre[0] == pytest.approx(p.labs["creatinine"], rel=1e-6)


def test_generator_is_byte_deterministic(one_patient, tmp_path):
    d, p = one_patient
    cohort.generate(tmp_path, patients=(p,), cardiac=False, pregnancy=False)
    files = sorted(f.relative_to(d) for f in d.rglob("*") if f.is_file())
    assert files == sorted(f.relative_to(tmp_path) for f in tmp_path.rglob("*") if f.is_file())
    for f in files:
        assert hashlib.sha256((d / f).read_bytes()).digest() == hashlib.sha256((tmp_path / f).read_bytes()).digest(), f
