"""Oncology twin: density mapping, schedules, sensitivities, calibration, forecasts, arms.

Calibration is checked against demo patients simulated with known parameters
(``twinflow.demo.cohort.simulate_truth`` + ``synthesize``: the same arrays ``generate``
writes, without the file round trip).  Tumour masks are the demo's expert labels
(``u >= 0.16``), as a segmentation step would provide them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from twinflow.demo import cohort
from twinflow.demo.anatomy import load_anatomy
from twinflow.errors import InputError
from twinflow.models.oncology.calibrate import calibrate_patient, split_visits
from twinflow.models.oncology.density import (
    ADC_FREE_WATER, ADC_MIN, T2_THRESHOLD, density_from_adc, density_from_labels, initial_density,
    observation_from_adc, observation_from_labels)
from twinflow.models.oncology.forecast import (
    ARMS, THETA_CELLS_PER_MM3, arm_treatments, forecast_metrics, simulate_arms)
from twinflow.models.oncology.growth import GrowthParams, ReactionDiffusion, Schedule
from twinflow.models.oncology.schedule import schedule_from_treatments

TRUE = {"d_w": "d_w_mm2_day", "k": "k_per_day", "alpha": "alpha_per_gy", "kappa": "kappa_l_per_mg_h"}


@pytest.fixture(scope="module")
def anat():
    return load_anatomy()


_truth_cache: dict = {}


def demo_observations(anat, pid: str, noise: bool, extra=None):
    """Observations of a demo patient; ``extra(i, mask)`` (optional) returns voxels to add to the
    tumour mask of visit ``i`` (a segmentation error)."""
    p = next(q for q in cohort.PATIENTS if q.patient_id == pid)
    if pid not in _truth_cache:
        _truth_cache[pid] = cohort.simulate_truth(p, anat)
    truth = _truth_cache[pid]
    rng = np.random.default_rng(p.seed)
    obs = []
    for i, d in enumerate(p.visit_days):
        adc = cohort.synthesize("ADC", truth[d], anat, rng, noise)
        mask = truth[d] >= T2_THRESHOLD
        if extra is not None:
            mask = mask | extra(i, mask)
        obs.append(observation_from_adc(d, adc, mask))
    return p, truth, obs


def boundary_shell(visits: dict[int, int], brain):
    """An over-segmentation like the automatic one: every ``n``-th voxel (raster order) of the
    one-voxel shell just outside the true mask, at the visits ``{index: n}``.  Their ADC is the
    tissue / CSF value (about 750-3000), which the tumour mapping turns into u of 0 to 0.9."""
    def extra(i, mask):
        out = np.zeros(mask.shape, bool)
        if i in visits:
            shell = ndimage.binary_dilation(mask) & ~mask & brain
            out.flat[np.flatnonzero(shell)[:: visits[i]]] = True
        return out
    return extra


def demo_schedule(p):
    _prow, _irows, trows = cohort.sheet_rows(p, "data")
    bsa = cohort.bsa_mosteller(p.height_cm, p.weight_kg)
    return schedule_from_treatments(trows, p.baseline, bsa_m2=bsa, patient=p.patient_id)


# ----------------------------------------------------------------------------- density / schedule

def test_adc_mapping_inverts_the_demo_images():
    u = np.linspace(0.16, 1.0, 50, dtype=np.float32)
    adc = np.round(ADC_FREE_WATER - (ADC_FREE_WATER - ADC_MIN) * u).astype(np.int16)
    got = density_from_adc(adc, np.ones(u.shape, bool))
    assert np.max(np.abs(got - u)) <= 0.5 / (ADC_FREE_WATER - ADC_MIN) + 1e-6
    assert density_from_adc(adc, np.zeros(u.shape, bool)).max() == 0.0


def test_label_fallback_uses_documented_intervals():
    lab = np.array([0, 1, 2, 3])
    assert density_from_labels(lab).tolist() == pytest.approx([0.0, 0.9, 0.48, 0.0])
    obs = observation_from_labels(5.0, lab)
    assert obs.lower.tolist() == pytest.approx([0.0, 0.8, 0.16, 0.0])
    assert obs.upper.tolist() == pytest.approx([0.16, 1.0, 0.8, 0.0])
    assert np.isnan(obs.value).all() and obs.tumour.tolist() == [False, True, True, True]


def test_schedule_from_treatment_rows_matches_the_demo_truth():
    p = cohort.PATIENTS[0]
    ours, truth = demo_schedule(p), cohort.schedule_for(p)
    np.testing.assert_array_equal(ours.rt_days, truth.rt_days)
    np.testing.assert_allclose(ours.rt_dose_gy, truth.rt_dose_gy)
    for a, b in ((0.0, 200.0), (28.0, 28.5), (100.5, 101.0)):
        assert ours.drug_exposure(a, b) == pytest.approx(truth.drug_exposure(a, b), rel=1e-12)
    # mg rows and mg/m2 rows agree; unknown drugs need PK parameters
    bsa = 1.8
    rows = [{"date": "2024-01-02", "kind": "drug", "agent": "temozolomide", "dose": 135.0, "unit": "mg"}]
    rows2 = [{"date": "2024-01-02", "kind": "drug", "agent": "Temozolomide", "dose": 75.0, "unit": "mg/m2"}]
    s1 = schedule_from_treatments(rows, "2024-01-01", bsa_m2=bsa)
    s2 = schedule_from_treatments(rows2, "2024-01-01", bsa_m2=bsa)
    assert s1.drug_exposure(0, 10) == pytest.approx(s2.drug_exposure(0, 10)) == pytest.approx(135.0 / (5.5 * bsa), rel=1e-6)
    with pytest.raises(InputError, match="no PK parameters for drug 'lomustine'"):
        schedule_from_treatments([{**rows[0], "agent": "lomustine"}], "2024-01-01", bsa_m2=bsa, patient="P1")
    other = schedule_from_treatments([{**rows[0], "agent": "lomustine"}], "2024-01-01", bsa_m2=bsa,
                                     pk={"lomustine": {"cl_l_h": 20.0, "v_l": 100.0}})
    assert other.drug_exposure(0, 1000) == pytest.approx(135.0 / 20.0, rel=1e-9)


def test_split_visits_default_holdout():
    assert split_visits(4) == ([0, 1, 2], [3])
    assert split_visits(3) == ([0, 1], [2])
    assert split_visits(2) == ([0, 1], [])
    assert split_visits(4, 0) == ([0, 1, 2, 3], [])
    with pytest.raises(ValueError):
        split_visits(2, 1)


# ----------------------------------------------------------------------------- solver

def test_sensitivities_match_finite_differences():
    rng = np.random.default_rng(0)
    sh = (14, 12, 10)
    mask = np.ones(sh, bool)
    mask[:, :, 8:] = False
    mask[:3, :3, :] = False
    wm = rng.random(sh)
    rd = ReactionDiffusion((1.5, 1.5, 3.0), mask, wm, 1 - wm, dtype=np.float64)
    u0 = np.zeros(sh)
    u0[5:9, 5:8, 3:6] = rng.random((4, 3, 3)) * 0.8
    sched = Schedule(rt_days=np.array([2.0, 3.0, 4.5]), rt_dose_gy=np.array([2.0, 2.0, 3.0]),
                     drug_exposure=lambda a, b: 10.0 * (b - a) if 1 <= a < 6 else 0.0)
    p = GrowthParams(0.7, 0.05, 0.03, 0.002)
    u, S = rd.simulate_sensitivities(u0, p, 8.0, 0.5, sched, save_days=[8.0])[8.0]
    assert np.array_equal(u, rd.simulate(u0, p, 8.0, 0.5, sched)[8.0])
    for i, name in enumerate(("d_w", "k", "alpha", "kappa")):
        v, e = getattr(p, TRUE[name]), 1e-6
        up = rd.simulate(u0, replace(p, **{TRUE[name]: v * np.exp(e)}), 8.0, 0.5, sched)[8.0]
        dn = rd.simulate(u0, replace(p, **{TRUE[name]: v * np.exp(-e)}), 8.0, 0.5, sched)[8.0]
        fd = (up - dn) / (2 * e)
        assert np.abs(fd).max() > 1e-3
        assert np.abs(fd - S[i]).max() <= 1e-6 * np.abs(fd).max()


# ----------------------------------------------------------------------------- calibration

def _rel_errors(res, p):
    return {n: res.params.__getattribute__(TRUE[n]) / getattr(p.params, TRUE[n]) - 1 for n in res.estimated}


def test_calibration_recovers_noise_free_patient_within_0_1_percent(anat):
    p, _truth, obs = demo_observations(anat, "ONC001", noise=False)
    assert np.array_equal(initial_density(obs[0]), np.maximum(obs[0].point_density(), 0))  # shell guard: no-op
    res, cal, held = calibrate_patient(obs, anat.spacing, anat.tissue, anat.p_wm, anat.p_gm, demo_schedule(p),
                                       holdout_visits=0)
    assert (cal, held) == ([0, 1, 2, 3], [])
    assert res.estimated == ("d_w", "k", "alpha", "kappa")
    err = _rel_errors(res, p)
    assert all(abs(e) < 1e-3 for e in err.values()), err
    assert res.converged and all(res.identifiable.values()) and res.flags == []
    assert res.n_forward_solves >= 3 and res.n_tangent_solves == 4 * res.n_forward_solves
    assert res.boundary_max_u < 1e-3
    assert res.sigma_u == pytest.approx(0.5 / 2400 / np.sqrt(3), rel=0.2)   # int16 rounding of ADC


def test_calibration_recovers_noisy_patient_within_5_percent(anat):
    p, _truth, obs = demo_observations(anat, "ONC001", noise=True)
    res, _cal, _held = calibrate_patient(obs, anat.spacing, anat.tissue, anat.p_wm, anat.p_gm, demo_schedule(p),
                                         holdout_visits=0)
    err = _rel_errors(res, p)
    assert all(abs(e) < 0.05 for e in err.values()), err
    assert res.sigma_u == pytest.approx(30.0 / 2400, rel=0.1)                 # ADC noise sigma 30
    # the Laplace sd covers the actual error (within 4 sd)
    assert all(abs(np.log1p(err[n])) < 4 * res.log_sd[n] + 1e-4 for n in err), (err, res.log_sd)


def test_calibration_is_robust_to_a_one_voxel_boundary_shell(anat):
    """Segmentation error at the tumour boundary: a one-voxel shell of non-tumour voxels (true
    u < 0.16, ADC of tissue / CSF) inside the masks of V1 (initial condition), V2 and V4.  They are
    outliers of 10-70 noise sd; least squares is pulled off by them, the Huber fit (with the
    shell guard of the initial condition, ``density.cap_boundary_shell``) is not."""
    extra = boundary_shell({0: 20, 1: 10, 3: 5}, anat.brain)
    p, truth, obs = demo_observations(anat, "ONC001", noise=True, extra=extra)
    n_extra = [int((o.tumour & (truth[o.day] < T2_THRESHOLD)).sum()) for o in obs]
    assert n_extra[2] == 0 and all(n > 50 for i, n in enumerate(n_extra) if i != 2), n_extra
    ex = obs[0].tumour & (truth[0] < T2_THRESHOLD)
    raw = np.maximum(obs[0].point_density(), 0.0)
    assert initial_density(obs[0])[ex].sum() < 0.5 * raw[ex].sum()                # the guard caps the shell
    assert int((initial_density(obs[0]) != raw)[~ex].sum()) <= 5                   # and little else
    kw = dict(holdout_visits=0, max_iter=8)
    res, _cal, _held = calibrate_patient(obs, anat.spacing, anat.tissue, anat.p_wm, anat.p_gm, demo_schedule(p), **kw)
    err = _rel_errors(res, p)
    assert all(abs(e) < 0.05 for e in err.values()), err
    assert res.identifiable["d_w"] and res.identifiable["k"]
    assert res.sigma_u == pytest.approx(30.0 / 2400, rel=0.15)              # the outliers do not inflate it
    assert res.n_downweighted > sum(n_extra[1:])
    assert res.to_dict()["loss"]["kind"] == "huber"
    ls, _cal, _held = calibrate_patient(obs, anat.spacing, anat.tissue, anat.p_wm, anat.p_gm, demo_schedule(p),
                                        robust=False, **kw)
    assert abs(_rel_errors(ls, p)["d_w"]) > 0.05                               # what the robust loss fixes


def test_concomitant_only_patient_flags_alpha_and_kappa(anat):
    p, _truth, obs = demo_observations(anat, "ONC002", noise=True)
    res, cal, held = calibrate_patient(obs, anat.spacing, anat.tissue, anat.p_wm, anat.p_gm, demo_schedule(p),
                                       holdout_visits=0, max_iter=6)
    i, j = res.estimated.index("alpha"), res.estimated.index("kappa")
    assert res.correlation[i][j] < -0.95
    assert not res.identifiable["alpha"] and not res.identifiable["kappa"]
    assert res.identifiable["d_w"] and res.identifiable["k"]
    assert any("alpha and kappa" in f for f in res.flags)
    err = _rel_errors(res, p)
    assert abs(err["d_w"]) < 0.05 and abs(err["k"]) < 0.05


# ----------------------------------------------------------------------------- forecast

def test_perfect_forecast_metrics(anat):
    p, truth, obs = demo_observations(anat, "ONC003", noise=False)
    u = truth[84]
    m = forecast_metrics(u, obs[2], anat.spacing, "V3")
    assert m["visit"] == "V3" and m["dice"] == 1.0
    assert m["ccc"] == pytest.approx(1.0, abs=1e-6)
    assert m["volume_rel_error"] == 0.0 and m["cell_count_rel_error"] == pytest.approx(0.0, abs=1e-4)
    vox = np.prod(anat.spacing)
    assert m["volume_ml_obs"] == pytest.approx((u >= 0.16).sum() * vox / 1000)
    # a wrong prediction scores worse
    bad = forecast_metrics(truth[21], obs[2], anat.spacing, "V3")
    assert bad["dice"] < 1 and bad["ccc"] < 0.9 and bad["cell_count_rel_error"] > 0.5


def test_arm_schedules_and_table():
    rows = arm_treatments("stupp_60gy_30fx_tmz", "2024-06-01", adjuvant_cycles=6)   # a Saturday
    rt = [r for r in rows if r["kind"] == "radiotherapy"]
    tmz = [r for r in rows if r["kind"] == "drug"]
    assert len(rt) == 30 and sum(r["dose"] for r in rt) == pytest.approx(60.0)
    assert rt[0]["date"] == "2024-06-03" and all(dt.date.fromisoformat(r["date"]).weekday() < 5 for r in rt)
    assert len(tmz) == 40 + 6 * 5          # concomitant: first to last fraction, 7 days a week
    hypo = arm_treatments("hypo_40gy_15fx", "2024-06-03")
    assert len(hypo) == 15 and sum(r["dose"] for r in hypo) == pytest.approx(40.0)
    assert arm_treatments("no_treatment", "2024-06-03") == []
    assert len(arm_treatments("rt_60gy_30fx", "2024-06-03")) == 30

    sh = (24, 24, 12)
    mask = np.ones(sh, bool)
    wm = np.full(sh, 0.8, np.float32)
    gm = np.full(sh, 0.2, np.float32)
    u0 = np.zeros(sh, np.float32)
    u0[10:14, 10:14, 5:7] = 0.6
    params = GrowthParams(0.1, 0.04, 0.03, 0.002)
    table = simulate_arms(u0, params, (2.0, 2.0, 3.0), mask, wm, gm, "2024-06-03", bsa_m2=1.8, horizon_days=60)
    assert list(table.columns) == ["arm", "day", "date", "volume_ml", "cell_count"]
    assert len(table) == len(ARMS) * 61 and sorted(table.arm.unique()) == sorted(ARMS)
    end = table[table.day == 60].set_index("arm")
    start = table[table.day == 0].set_index("arm")
    assert start.cell_count.nunique() == 1
    assert start.cell_count.iloc[0] == pytest.approx(0.6 * 32 * 12.0 * THETA_CELLS_PER_MM3, rel=1e-5)
    assert end.cell_count["no_treatment"] > start.cell_count["no_treatment"]
    assert end.cell_count["stupp_60gy_30fx_tmz"] < end.cell_count["rt_60gy_30fx"] < end.cell_count["no_treatment"]


def test_holdout_metrics_with_true_parameters_are_near_perfect(anat):
    from twinflow.models.oncology.forecast import holdout_metrics
    p, _truth, obs = demo_observations(anat, "ONC003", noise=False)
    _cal, held = split_visits(len(obs))
    m = holdout_metrics(obs, held, ["V1", "V2", "V3"], p.params, anat.spacing, anat.tissue, anat.p_wm, anat.p_gm,
                        demo_schedule(p))
    assert [x["visit"] for x in m] == ["V3"]
    assert m[0]["dice"] > 0.999 and m[0]["ccc"] > 0.999
    assert abs(m[0]["volume_rel_error"]) < 2e-3 and abs(m[0]["cell_count_rel_error"]) < 2e-3
