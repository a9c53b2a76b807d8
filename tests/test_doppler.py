"""Doppler waveform indices on hand-computed waveforms, and the spectral-region DICOM reader on
demo DICOMs written from waveforms of known PI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from twinflow.demo import pregnancy as demo
from twinflow.errors import InputError
from twinflow.io.doppler import analyse_dicom, read_region, trace_envelope
from twinflow.models.pregnancy.waveform import WaveformError, analyse


def _piecewise(t, T=1.0):
    """One cycle per T: 20 -> 100 cm/s in 0.1 T, down to 30 at 0.4 T, down to 20 at T."""
    u = np.mod(t, T) / T
    return np.interp(u, [0.0, 0.1, 0.4, 1.0], [20.0, 100.0, 30.0, 20.0])


def test_pi_ri_on_a_hand_computed_waveform():
    # by hand: PSV 100, EDV 20, TAMAX = (6 + 19.5 + 15) / 1 s = 40.5 cm/s
    # PI = (100 - 20) / 40.5 = 1.975309, RI = 80 / 100 = 0.8
    t = np.arange(0, 4.5, 0.001)
    a = analyse(t, _piecewise(t), smooth_s=0)
    assert a.n_cycles == 3
    assert a.psv_cm_s == pytest.approx(100.0, abs=1e-9)
    assert a.edv_cm_s == pytest.approx(20.0, abs=1e-9)
    assert a.tamax_cm_s == pytest.approx(40.5, rel=1e-6)
    assert a.pi == pytest.approx(80.0 / 40.5, rel=1e-6)
    assert a.ri == pytest.approx(0.8, abs=1e-9)
    assert a.heart_rate_bpm == pytest.approx(60.0, rel=1e-6)
    assert not a.notch
    for c in a.cycles:
        assert c.onset_s == pytest.approx(np.floor(c.start_s + 0.5) + 0.05, abs=1e-6)  # half-height of the upstroke
    # the default smoothing (25 ms) moves the indices by well under 1 %
    b = analyse(t, _piecewise(t))
    assert b.pi == pytest.approx(a.pi, rel=0.01)


def test_early_diastolic_notch_detected():
    # notch: after the peak the velocity dips to 25 at 0.25 T and recovers to 40 at 0.32 T
    def notched(t):
        u = np.mod(t, 0.8) / 0.8
        return np.interp(u, [0, 0.1, 0.25, 0.32, 1.0], [10, 90, 25, 40, 10])

    t = np.arange(0, 4.0, 0.002)
    a = analyse(t, notched(t), smooth_s=0)
    assert a.notch
    assert a.notch_depth == pytest.approx((40 - 25) / 90, rel=1e-6)
    assert a.heart_rate_bpm == pytest.approx(75.0, rel=1e-6)
    assert not analyse(t, _piecewise(t), smooth_s=0).notch


def test_flat_envelope_is_an_error():
    t = np.arange(0, 3, 0.01)
    with pytest.raises(WaveformError):
        analyse(t, np.full(t.size, 30.0))


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("preg_demo")
    truth = demo.generate(d)
    return d, truth


def test_demo_dicoms_recover_pi_within_3_percent(demo_data):
    d, truth = demo_data
    n = 0
    for p in demo.PREGNANCIES:
        for (visit, series), rel in sorted(demo.pregnancy_files(d, p).items()):
            if not rel.endswith(".dcm"):
                continue
            side = series.rsplit("_", 1)[1]
            res = analyse_dicom(d / rel, patient=p.patient_id)
            known = truth[p.patient_id]["visits"][visit]["sides"][side]["pi"]
            assert res["indices"].pi == pytest.approx(known, rel=0.03), (p.patient_id, visit, side)
            assert res["indices"].psv_cm_s == pytest.approx(truth[p.patient_id]["visits"][visit]["sides"][side]
                                                            ["psv_cm_s"], rel=0.03)
            assert res["qc_png"][:8] == b"\x89PNG\r\n\x1a\n"
            n += 1
    assert n == 7
    # the high-risk pregnancy's first-trimester waveforms are notched, the low-risk ones are not
    hi = analyse_dicom(d / demo.pregnancy_files(d, demo.PREGNANCIES[1])[("V1", "UTA_DOPPLER_RIGHT")])
    lo = analyse_dicom(d / demo.pregnancy_files(d, demo.PREGNANCIES[0])[("V1", "UTA_DOPPLER_LEFT")])
    assert hi["indices"].notch and not lo["indices"].notch


def test_region_geometry_and_axes(demo_data):
    d, _ = demo_data
    reg, pix = read_region(d / demo.pregnancy_files(d, demo.PREGNANCIES[0])[("V1", "UTA_DOPPLER_LEFT")])
    r = demo.REGION
    assert (reg.x0, reg.y0, reg.x1, reg.y1, reg.baseline_row) == (r["x0"], r["y0"], r["x1"], r["y1"], r["ref_y"])
    assert pix.shape == (r["y1"] - r["y0"] + 1, r["x1"] - r["x0"] + 1)
    assert reg.dx_s == demo.DX_S and reg.dy_cm_s == demo.DY_CM_S
    assert reg.velocity_cm_s(r["ref_y"] - 200) == pytest.approx(100.0)          # 200 rows above baseline
    assert reg.time_s(100) == pytest.approx(0.5)
    env = trace_envelope(pix, reg)
    assert env.side == "above" and np.isfinite(env.v_cm_s).mean() > 0.95
    # the burned-in header (rows 5-40 of the image) lies outside what the reader returns
    assert reg.y0 > 40


def _write_variant(tmp_path, src, **changes):
    import pydicom

    ds = pydicom.dcmread(str(src))
    for path, value in changes.items():
        if path == "Modality":
            ds.Modality = value
        elif path == "drop_regions":
            del ds.SequenceOfUltrasoundRegions
        else:
            setattr(ds.SequenceOfUltrasoundRegions[1], path, value)
    out = tmp_path / "variant.dcm"
    ds.save_as(str(out))
    return out


@pytest.mark.parametrize("change,message", [
    ({"drop_regions": True}, "no Sequence of Ultrasound Regions"),
    ({"PhysicalUnitsYDirection": 3}, "expected 4 (seconds) and 7 (cm/s)"),
    ({"RegionSpatialFormat": 1}, "no spectral Doppler region"),
    ({"ReferencePixelY0": 5000}, "baseline row"),
    ({"Modality": "MR"}, "not US"),
])
def test_bad_dicoms_give_one_clear_message(demo_data, tmp_path, change, message):
    d, _ = demo_data
    src = d / demo.pregnancy_files(d, demo.PREGNANCIES[0])[("V1", "UTA_DOPPLER_LEFT")]
    bad = _write_variant(tmp_path, src, **change)
    with pytest.raises(InputError) as e:
        analyse_dicom(bad, patient="P9", display_path="img/bad.dcm")
    assert message in str(e.value) and str(e.value).startswith("patient P9: img/bad.dcm:")
    assert "DOE" not in str(e.value) and "99887766" not in str(e.value)


def test_not_a_dicom(tmp_path):
    p = tmp_path / "x.dcm"
    p.write_text("hello")
    with pytest.raises(InputError, match="not a readable DICOM"):
        analyse_dicom(p, patient="P1")


def test_measured_pi_file_in_demo(demo_data):
    d, truth = demo_data
    rel = demo.pregnancy_files(d, demo.PREGNANCIES[0])[("V2", "UTA_DOPPLER_RIGHT")]
    assert rel.endswith(".json")
    assert json.loads((d / rel).read_text())["pi"] == pytest.approx(
        truth["PREG001"]["visits"]["V2"]["sides"]["RIGHT"]["pi"], abs=1e-3)
