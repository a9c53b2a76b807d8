"""The oncology twin's estimate and simulate stages on the real tumours in ../shared/data.

Each is a single imaging visit, so each must become an *uncalibrated* twin from the documented
glioma prior (no identifiability claims), whose initial tumour is the expert's and lies inside
the model's domain.  pyradiomics brain1 (T1post, 0.78 x 0.78 x 6.5 mm, no brain mask) exercises
the estimated-brain fallback; the BraTS 2013 patients (FLAIR, T1c, brain mask, 1 mm) the organ
mask.  Longitudinal real data are not in ../shared/data: calibration is checked on generated
cases (tests/test_oncology_tumortwin.py, tests/test_oncology_model.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from twinflow.io.imaging import ingest_image, ingest_label
from twinflow.models.base import PatientContext
from twinflow.models.oncology.inputs import PRIORS
from twinflow.layout import Layout
from twinflow.models.oncology.model import OncologyTwin
from twinflow.sheets import ImageRow

pytestmark = pytest.mark.shared_data
ROW = {"patient_id": "R1", "twin_model": "oncology", "sex": "F", "age_years": 55, "height_cm": 168.0,
       "weight_kg": 70.0}
SIM = {"horizon_days": 30, "arms": ["no_treatment"]}


def _ingest(results: Path, visit: str, series: str, src: Path, label: Path | None = None) -> ImageRow:
    d = results / "ingest" / "imaging" / visit
    ingest_image(src, d / f"{series}.nii.gz", d / f"{series}.qc.json", d / f"{series}.png", patient="R1",
                 visit=visit, series=series, date="2024-01-01", display_path=src.name)
    if label is not None:
        ingest_label(label, d / f"{series}.nii.gz", d / f"{series}.label.nii.gz", d / f"{series}.label.qc.json",
                     patient="R1", visit=visit, series=series, display_path=label.name)
    return ImageRow("R1", visit, "2024-01-01", series, str(src), src.name, str(label) if label else None,
                    label.name if label else None)


def _estimate_and_simulate(ctx: PatientContext, expert_ml: float) -> dict:
    m = OncologyTwin()
    m.estimate(ctx, ctx.results / "estimate")
    est = json.loads((ctx.results / "estimate" / "estimate.json").read_text())
    assert est["calibrated"] is False and est["forecast"] == []
    assert est["params"]["d_w_mm2_day"] == PRIORS["brain"].d_w_mm2_day
    assert all(v["identifiable"] is None and not v["estimated"] for v in est["calibration"]["parameters"].values())
    init = np.asarray(nib.load(str(ctx.results / "estimate" / "initial_density.nii.gz")).dataobj)
    tissue = np.asarray(nib.load(str(ctx.results / "estimate" / "tissue.nii.gz")).dataobj) > 0
    assert float((init[tissue] > 0).sum()) >= 0.95 * float((init > 0).sum())   # the tumour lies in the domain
    m.simulate(replace(ctx, config=SIM), ctx.results / "estimate", ctx.results / "simulate")
    course = pd.read_csv(ctx.results / "simulate" / "results" / "course.tsv", sep="\t")
    v0 = float(course.volume_ml.iloc[0])
    assert v0 == pytest.approx(expert_ml, rel=0.05)              # the expert's tumour, inside the domain
    assert course.volume_ml.iloc[-1] > v0 and "volume_ml_p05" not in course   # grows untreated; no band
    return est


def test_brain1_single_visit_is_an_uncalibrated_twin(shared_data, tmp_path):
    src = shared_data / "pyradiomics"
    res = tmp_path / "R1"
    row = _ingest(res, "V1", "T1post", src / "brain1_image.nrrd", src / "brain1_label.nrrd")
    ctx = PatientContext("R1", ROW, [row], [], Layout(str(res.parent)), {})
    m = OncologyTwin()
    m.segment(ctx, "V1", ctx.segment_dir("V1"))
    lab = np.asarray(nib.load(str(ctx.label_path("V1", "T1post"))).dataobj)
    zooms = nib.load(str(ctx.label_path("V1", "T1post"))).header.get_zooms()[:3]
    expert_ml = float((lab > 0).sum() * np.prod(zooms)) / 1000.0
    est = _estimate_and_simulate(ctx, expert_ml)
    assert est["organ"] == "brain" and any("estimated" in a for a in est["assumptions"])
    assert est["spacing_mm"][2] == pytest.approx(6.5)


@pytest.mark.parametrize("case", ["brats_2013_pat0001_1", "brats_2013_pat0002_1", "brats_2013_pat0003_1"])
def test_brats_single_visit_is_an_uncalibrated_twin_in_its_brain_mask(shared_data, tmp_path, case):
    src = shared_data / "brats" / case
    res = tmp_path / "R1"
    rows = [_ingest(res, "V1", "FLAIR", src / "Flair_subtrMeanDivStd.nii.gz"),
            _ingest(res, "V1", "T1c", src / "T1c_subtrMeanDivStd.nii.gz", src / "OTMultiClass.nii.gz"),
            _ingest(res, "V1", "brain_mask", src / "brainmask.nii.gz")]
    # BraTS 2013 labels (1 necrosis, 2 oedema, 3 non-enhancing, 4 enhancing) in twinflow's convention,
    # written as the segment stage would with an expert label
    img = nib.load(str(res / "ingest" / "imaging" / "V1" / "T1c.label.nii.gz"))
    tw = np.array([0, 3, 2, 2, 1], np.uint8)[np.asarray(img.dataobj).astype(np.int16)]
    seg = res / "segment" / "V1"
    seg.mkdir(parents=True)
    nib.save(nib.Nifti1Image(tw, img.affine), str(seg / "segmentation.nii.gz"))
    ref = img
    ctx = PatientContext("R1", ROW, rows, [], Layout(str(res.parent)), {})
    whole = (tw == 1) | (tw == 2)            # necrosis holds no viable cells: not in the visible volume
    expert_ml = float(whole.sum()) * float(np.prod(ref.header.get_zooms()[:3])) / 1000.0
    est = _estimate_and_simulate(ctx, expert_ml)
    assert est["organ"] == "brain" and any("organ mask" in a for a in est["assumptions"])
