"""QC record of the LV segmentation: a clean synthetic cine passes, and each kind of
implausible segmentation (EF out of range, a slice out of line with its neighbours, a
cavity without myocardium around it, a gap in the stack) is flagged."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import ndimage as ndi

from twinflow.segment import cardiac as cs
from twinflow.segment.cardiac_qc import qc_record


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo patient's synthetic cine (known LV volume curve), segmented automatically."""
    from twinflow.demo.cardiac import CARDIAC_PATIENTS, cine_dir, generate
    from twinflow.io.imaging import read_image_with_info

    d = tmp_path_factory.mktemp("cardiac_demo")
    p = CARDIAC_PATIENTS[0]
    truth = generate(d, p)
    img, _ = read_image_with_info(cine_dir(d, p))
    seg = cs.segment_lv(img)
    return {"truth": truth, "seg": seg, "arr": cs.cine_array(img, seg.slice_axis)}


def _codes(qc):
    return {f["code"]: f for f in qc["flags"]}


def test_synthetic_cine_function_and_clean_qc(demo):
    seg, truth = demo["seg"], demo["truth"]
    f = cs.lv_function(seg)
    # frames and EF of the generating volume curve.  Its ED and ES are plateaus (isovolumic
    # phases: frames 19, 0, 1, 2 hold the same largest volume), so the automatic frames must lie
    # on them: the generating volume at the automatic ED / ES within 1 % of its largest / smallest
    vols = np.asarray(truth["cine"]["lv_volume_ml"])
    assert vols[f["ed_frame"]] >= 0.99 * vols.max()
    assert vols[f["es_frame"]] <= 1.01 * vols.min()
    assert f["ef_percent"] == pytest.approx(truth["model_truth"]["ef_pct"], abs=3.0)
    assert f["edv_ml"] == pytest.approx(truth["cine"]["disc_volumes_ed"]["discs_cavity_ml"], rel=0.12)
    qc = qc_record(seg, demo["arr"], f)
    assert qc["plausible"] and qc["flags"] == [], qc["flags"]
    assert qc["min_slice_confidence"] >= 0.8
    assert [p["slice"] for p in qc["per_slice"]] == f["slices_used"]


def test_ef_out_of_range_is_flagged(demo):
    f = dict(cs.lv_function(demo["seg"]), ef_percent=91.0)
    qc = qc_record(demo["seg"], demo["arr"], f)
    assert not qc["plausible"] and _codes(qc)["ef_out_of_range"]["severity"] == "implausible"
    f = dict(f, ef_percent=3.0)
    assert "ef_out_of_range" in _codes(qc_record(demo["seg"], demo["arr"], f))


def test_slice_jump_gap_and_missing_myocardium_are_flagged(demo):
    seg = demo["seg"]
    f = cs.lv_function(seg)
    zs = f["slices_used"]
    mid = zs[len(zs) // 2]

    # half of a mid-ventricular pool lost at ED: out of line with both neighbours
    s1 = copy.deepcopy(seg)
    rows = np.nonzero(s1.blood[f["ed_frame"], mid].any(axis=1))[0]
    s1.blood[f["ed_frame"], mid, rows[len(rows) // 3]:] = False
    qc = qc_record(s1, demo["arr"], cs.lv_function(s1))
    # (its neighbours, measured against it, may be out of line too)
    assert mid in _codes(qc)["slice_volume_jump"]["slices"] and not qc["plausible"]

    # no myocardium around a mid-ventricular cavity
    s2 = copy.deepcopy(seg)
    s2.myocardium[:, mid] = False
    qc = qc_record(s2, demo["arr"], f)
    flag = _codes(qc)["cavity_outside_myocardium"]
    assert flag["slices"] == [mid] and flag["severity"] == "implausible"
    assert next(p for p in qc["per_slice"] if p["slice"] == mid)["scores"]["enclosure"] == 0.0

    # a slice without LV inside the stack
    s3 = copy.deepcopy(seg)
    s3.blood[:, mid] = False
    s3.present[:, mid] = False
    qc = qc_record(s3, demo["arr"], cs.lv_function(s3))
    assert _codes(qc)["gap_in_stack"]["slices"] == [mid] and not qc["plausible"]


def test_a_jump_between_phases_is_a_warning(demo):
    seg = copy.deepcopy(demo["seg"])
    f = cs.lv_function(seg)
    mid = f["slices_used"][len(f["slices_used"]) // 2]
    t = (f["es_frame"] + 3) % seg.n_phases
    seg.blood[t, mid] = ndi.binary_dilation(seg.blood[t, mid], iterations=8)  # one frame's border jumps out
    qc = qc_record(seg, demo["arr"], f)
    flag = _codes(qc)["phase_area_jump"]
    assert flag["slices"] == [mid] and flag["severity"] == "warning"
    assert next(p for p in qc["per_slice"] if p["slice"] == mid)["scores"]["temporal"] < 1.0


def test_an_implausible_segmentation_flags_the_twin():
    """The twin's flags say that the calibration rests on an implausible segmentation."""
    from twinflow.models.cardiac.model import _qc_flags

    qc = {"plausible": False, "flags": [
        {"code": "ef_out_of_range", "severity": "implausible", "message": "ejection fraction 91.0 % is outside 5-85 %"},
        {"code": "phase_area_jump", "severity": "warning", "message": "slice 3: area jumps"}]}
    flags = _qc_flags(qc)
    assert flags[0].startswith("segmentation implausible (ef_out_of_range): the calibration rests on volumes")
    assert "segmentation warning: slice 3: area jumps" in flags
    assert _qc_flags({"plausible": True, "flags": []}) == []
