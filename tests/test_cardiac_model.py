"""Cardiac twin model: circulation physiology, numerics, calibration recovery, metoprolol PK/PD."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp

from twinflow.errors import InputError
from twinflow.models.cardiac.arms import DEFAULT_ARMS, Arm, apply_effect, simulate_arms
from twinflow.models.cardiac.calibrate import calibrate, synthetic_patient, targets_from_labs
from twinflow.models.cardiac.circulation import DEFAULT_PARAMS, Circulation
from twinflow.models.cardiac.drugs import Regimen, pk_model, resolve_phenotype, steady_state_exposure
from twinflow.models.cardiac.circulation import atrial_activation, pressures, ventricular_activation
from twinflow.models.cardiac.drugs import NM_PK, effect_site_concentration


@pytest.fixture(scope="module")
def default_result():
    return Circulation().steady_state(DEFAULT_PARAMS)


# ----------------------------------------------------------------------------- physiology
def test_default_adult_is_physiological(default_result):
    m = default_result.metrics
    assert 55 <= m["ef_pct"] <= 70
    assert 100 <= m["edv_ml"] <= 160
    assert 110 <= m["sbp_mmhg"] <= 130 and 70 <= m["dbp_mmhg"] <= 90
    assert 4.0 <= m["co_l_min"] <= 7.0
    assert 3 <= m["lvedp_mmhg"] <= 12          # normal filling pressure
    assert 2 <= m["ra_mean_mmhg"] <= 8 and 10 <= m["pa_mean_mmhg"] <= 20
    # cardiac output from SV x HR equals the mean aortic-valve flow
    assert m["co_from_flow_l_min"] == pytest.approx(m["co_l_min"], rel=1e-3)
    # at steady state both ventricles eject the same stroke volume
    assert m["rv_edv_ml"] - m["rv_esv_ml"] == pytest.approx(m["sv_ml"], abs=0.3)
    # the PV loop is traversed counter-clockwise with positive stroke work
    assert m["stroke_work_mmhg_ml"] > 0.8 * m["sv_ml"] * m["dbp_mmhg"]


def test_periodic_steady_state_and_volume_conservation(default_result):
    res = default_result
    assert res.residual_ml < 1e-6
    solver = Circulation()
    x = res.volumes_ml[0]
    for _ in range(5):
        x = solver._cycle(x, DEFAULT_PARAMS)
    assert np.max(np.abs(x - res.volumes_ml[0])) < 1e-5          # further cycles change nothing
    tot = res.volumes_ml.sum(axis=1)
    expect = (DEFAULT_PARAMS.v_stressed_ml + DEFAULT_PARAMS.la_v0_ml + DEFAULT_PARAMS.lv_v0_ml
              + DEFAULT_PARAMS.ra_v0_ml + DEFAULT_PARAMS.rv_v0_ml)
    assert np.max(np.abs(tot - expect)) < 1e-9 * expect


@pytest.mark.parametrize("hr", [50.0, 110.0])
def test_steady_state_from_cold_start_other_heart_rates(hr):
    p = DEFAULT_PARAMS.with_(hr_bpm=hr)
    m = Circulation().steady_state(p).metrics
    assert m["steady_state_residual_ml"] < 1e-6
    m0 = Circulation().steady_state(DEFAULT_PARAMS).metrics
    # Frank-Starling + filling time: slower heart -> bigger EDV, faster -> smaller
    assert (m["edv_ml"] - m0["edv_ml"]) * (70.0 - hr) > 0
    assert 40 <= m["ef_pct"] <= 75


def test_fixed_step_matches_radau(default_result):
    """One cycle of the RK4 scheme against scipy's Radau at tight tolerance."""
    p = DEFAULT_PARAMS
    T = 60.0 / p.hr_bpm

    def rhs(t, v):
        pr = pressures(p, np.array([t]), v[None, :])[0]
        pla, plv, psa, psv, pra, prv, ppa, ppv = pr
        qmv = max(pla - plv, 0) / p.r_mv_mmhg_s_ml
        qav = max(plv - psa, 0) / (p.r_av_mmhg_s_ml + p.zc_sys_mmhg_s_ml)
        qtv = max(pra - prv, 0) / p.r_tv_mmhg_s_ml
        qpv = max(prv - ppa, 0) / (p.r_pv_mmhg_s_ml + p.zc_pul_mmhg_s_ml)
        qs, qv = (psa - psv) / p.r_sys_mmhg_s_ml, (psv - pra) / p.r_sv_mmhg_s_ml
        qp, qpv2 = (ppa - ppv) / p.r_pul_mmhg_s_ml, (ppv - pla) / p.r_pven_mmhg_s_ml
        return [qpv2 - qmv, qmv - qav, qav - qs, qs - qv, qv - qtv, qtv - qpv, qpv - qp, qp - qpv2]

    x0 = default_result.volumes_ml[0]
    sol = solve_ivp(rhs, (0, T), x0, method="Radau", rtol=1e-8, atol=1e-8, max_step=T / 800,
                    t_eval=default_result.t_s)
    lv = sol.y[1]
    assert lv.max() == pytest.approx(default_result.metrics["edv_ml"], rel=2e-3)
    assert lv.min() == pytest.approx(default_result.metrics["esv_ml"], rel=5e-3)
    assert np.max(np.abs(sol.y[:, -1] - default_result.volumes_ml[-1])) < 0.5


def test_activation_shapes():
    T = 60.0 / 70.0
    t = np.linspace(0, T, 2001)
    ev, ea = ventricular_activation(t, T), atrial_activation(t, T)
    assert ev.max() == pytest.approx(1.0, abs=1e-3) and ev.min() >= 0
    assert 0.2 * T < t[np.argmax(ev)] < 0.45 * T          # peak systole
    assert ev[-1] < 1e-3                                   # relaxed before the next beat
    assert ea.max() == pytest.approx(1.0, abs=1e-3)
    assert t[np.argmax(ea)] > 0.8 * T                      # atrial kick late in diastole


# ----------------------------------------------------------------------------- calibration
TRUTHS = [
    dict(lv_emax_mmhg_ml=2.1, v_stressed_ml=1350.0, r_sys_mmhg_s_ml=1.25, c_sa_ml_mmhg=1.2, hr_bpm=62.0),
    dict(lv_emax_mmhg_ml=3.4, v_stressed_ml=1050.0, r_sys_mmhg_s_ml=0.85, c_sa_ml_mmhg=1.9, hr_bpm=84.0),
]


@pytest.mark.parametrize("truth", TRUTHS)
def test_calibration_recovers_parameters_from_volumes_and_pressures(truth):
    tp = DEFAULT_PARAMS.with_(**truth)
    sp = synthetic_patient(tp, seed=0, noise=False)
    fit = calibrate(sp["edv_ml"], sp["esv_ml"], sp["sbp"], sp["dbp"], sp["hr"])
    assert fit.converged
    assert set(fit.estimated) == {"lv_emax_mmhg_ml", "v_stressed_ml", "r_sys_mmhg_s_ml", "c_sa_ml_mmhg"}
    for k in fit.estimated:
        assert fit.estimates[k] == pytest.approx(truth[k], rel=0.05), k
        assert 0 < fit.rel_sd[k] < 1.0
        lo, hi = fit.ci95[k]
        assert lo < truth[k] < hi
    assert max(abs(r) for r in fit.residuals_sd_units.values()) < 1e-3
    assert fit.params.hr_bpm == truth["hr_bpm"]
    assert fit.n_model_evaluations > 0
    ident = fit.identifiability
    # contractility and resistance are pinned by four numbers; diastolic stiffness and dead
    # volume (not estimated) are not: the posterior keeps (nearly) the vague prior SD of 1
    assert ident["identifiable"]["lv_emax_mmhg_ml"] and ident["identifiable"]["r_sys_mmhg_s_ml"]
    assert not ident["identifiable"]["lv_emin_mmhg_ml"] and not ident["identifiable"]["lv_v0_ml"]
    assert ident["posterior_rel_sd"]["lv_emin_mmhg_ml"] > 0.9
    assert ident["posterior_rel_sd"]["lv_emax_mmhg_ml"] < 0.5
    assert len(ident["singular_values"]) == 4
    # flags of estimated parameters are carried into the assumptions
    for k in fit.estimated:
        assert ident["identifiable"][k] == (not any(k in a and "poorly identified" in a for a in fit.assumptions))


def test_volumes_only_identifies_few_parameters():
    truth = dict(lv_emax_mmhg_ml=2.4, v_stressed_ml=1300.0)
    tp = DEFAULT_PARAMS.with_(**truth)
    sp = synthetic_patient(tp, seed=0, noise=False)
    fit = calibrate(sp["edv_ml"], sp["esv_ml"])
    assert fit.estimated == ("lv_emax_mmhg_ml", "v_stressed_ml")
    for k, v in truth.items():
        assert fit.estimates[k] == pytest.approx(v, rel=0.05)
    ident = fit.identifiability["identifiable"]
    assert not ident["r_sys_mmhg_s_ml"] and not ident["c_sa_ml_mmhg"]
    assert sum(ident.values()) <= 2
    text = " ".join(fit.assumptions)
    assert "blood pressure not measured" in text and "heart rate not measured" in text
    assert "r_sys_mmhg_s_ml = " in text


def test_calibration_with_noise_is_consistent_with_its_uncertainty():
    tp = DEFAULT_PARAMS.with_(**TRUTHS[0])
    sp = synthetic_patient(tp, seed=3, noise=True)
    fit = calibrate(sp["edv_ml"], sp["esv_ml"], sp["sbp"], sp["dbp"], sp["hr"])
    for k in fit.estimated:
        z = (math.log(fit.estimates[k]) - math.log(TRUTHS[0][k])) / fit.rel_sd[k]
        assert abs(z) < 4, (k, z)


def test_calibration_rejects_bad_input():
    with pytest.raises(InputError, match="patient P7: .*ESV < EDV"):
        calibrate(50.0, 120.0, patient="P7")
    with pytest.raises(InputError, match="both systolic and diastolic"):
        calibrate(120.0, 50.0, 120.0, None)


def test_targets_from_labs_takes_latest_value():
    labs = pd.DataFrame({
        "date": ["2024-01-01", "2024-03-01", "2024-02-01", "2024-02-01"],
        "loinc": ["8480-6", "8480-6", "8462-4", "2160-0"],
        "analyte": ["systolic_bp", "systolic_bp", "diastolic_bp", "creatinine"],
        "value": [150.0, 132.0, 85.0, 80.0], "flag": ["", "", "", ""]})
    t = targets_from_labs(labs)
    assert t == {"sbp_mmhg": 132.0, "dbp_mmhg": 85.0, "hr_bpm": None}


def test_synthetic_patient_curve_follows_model():
    sp = synthetic_patient(DEFAULT_PARAMS, seed=1, noise=False)
    t = np.linspace(0, sp["period_s"], 2001)
    v = sp["lv_volume_curve"](t)
    assert v.max() == pytest.approx(sp["edv_ml"], abs=0.2)
    assert v.min() == pytest.approx(sp["esv_ml"], abs=0.2)
    assert sp["lv_volume_curve"](0.1) == pytest.approx(sp["lv_volume_curve"](0.1 + 3 * sp["period_s"]))
    a, b = synthetic_patient(DEFAULT_PARAMS, seed=5), synthetic_patient(DEFAULT_PARAMS, seed=5)
    assert a["edv_ml"] == b["edv_ml"] and a["edv_ml"] != sp["edv_ml"]


# ----------------------------------------------------------------------------- drug
def test_poor_metaboliser_exposure_matches_documented_multiplier():
    nm, pm = pk_model("Normal Metabolizer"), pk_model("Poor Metabolizer")
    assert pm.total_auc_per_mg() / nm.total_auc_per_mg() == pytest.approx(4.9, rel=1e-9)
    assert nm.ke_per_h / pm.ke_per_h == pytest.approx(2.3, rel=1e-9)
    um = pk_model("Ultrarapid Metabolizer")
    assert pm.total_auc_per_mg() / um.total_auc_per_mg() == pytest.approx(13.0, rel=1e-9)
    # steady state AUC over a dosing interval = dose / (CL/F), phenotype ratio preserved
    s_nm = steady_state_exposure(Regimen(100, 12), "Normal Metabolizer")
    s_pm = steady_state_exposure(Regimen(100, 12), "Poor Metabolizer")
    assert s_nm["auc_tau_mg_h_l"] == pytest.approx(100 / NM_PK.cl_f_l_h, rel=1e-4)
    assert s_pm["auc_tau_mg_h_l"] / s_nm["auc_tau_mg_h_l"] == pytest.approx(4.9, rel=1e-3)
    assert s_nm["t_half_h"] == pytest.approx(3.5) and s_pm["t_half_h"] == pytest.approx(8.05)
    # single 100 mg dose in an NM: Cmax ~50-200 ng/mL at 1-3 h (label ranges)
    t = np.linspace(0, 24, 2401)
    c = nm.concentration(t, [0.0], [100.0])
    assert 0.05 < c.max() < 0.2 and 1.0 <= t[np.argmax(c)] <= 3.0


def test_phenotype_strings():
    for s, name in [("Poor Metabolizer", "Poor Metabolizer"), ("intermediate metabolizer", "Intermediate Metabolizer"),
                    ("Normal Metabolizer", "Normal Metabolizer"), ("Ultrarapid Metabolizer", "Ultrarapid Metabolizer"),
                    ("EM", "Normal Metabolizer")]:
        ph, notes = resolve_phenotype(s)
        assert ph.name == name and notes == []
    for s in ("Indeterminate", None, "n/a"):
        ph, notes = resolve_phenotype(s)
        assert ph.name == "Normal Metabolizer" and "population default" in notes[0]


def test_effect_site_concentration_matches_ode():
    pk = pk_model("Poor Metabolizer")
    t = np.linspace(0, 36, 721)
    doses_t, doses = [0.0, 12.0, 24.0], [100.0, 100.0, 100.0]
    ce = effect_site_concentration(pk, NM_PK.ke0_per_h, t, doses_t, doses)
    sol = solve_ivp(lambda tt, y: [NM_PK.ke0_per_h * (pk.concentration([tt], doses_t, doses)[0] - y[0])],
                    (0, 36), [0.0], t_eval=t, rtol=1e-10, atol=1e-13, max_step=0.05)
    assert np.max(np.abs(sol.y[0] - ce)) < 1e-6 * ce.max() + 1e-9


def test_arms_heart_rate_drops_with_dose_and_contractility_falls():
    out = simulate_arms(DEFAULT_PARAMS, DEFAULT_ARMS[:3], "Normal Metabolizer")
    rows = [r for r in out["table"] if r["timepoint"] == "trough"]
    hr = [r["hr_bpm"] for r in rows]
    emax = [r["lv_emax_mmhg_ml"] for r in rows]
    assert hr[0] == DEFAULT_PARAMS.hr_bpm
    assert hr[0] > hr[1] > hr[2] and emax[0] > emax[1] > emax[2]
    assert rows[0]["co_l_min"] > rows[2]["co_l_min"] and rows[0]["sbp_mmhg"] > rows[2]["sbp_mmhg"]
    assert rows[2]["edv_ml"] > rows[0]["edv_ml"]                 # longer diastole fills more
    peak = [r for r in out["table"] if r["timepoint"] == "peak"]
    assert all(p["hr_bpm"] <= r["hr_bpm"] for p, r in zip(peak, rows))
    loop = out["pv_loops"]["metoprolol 100 mg bid"]["trough"]
    assert len(loop["lv_volume_ml"]) == 100 and max(loop["lv_pressure_mmhg"]) > 90
    # PM: same dose, higher exposure, lower heart rate
    pm = simulate_arms(DEFAULT_PARAMS, [Arm("100 bid", 100, 12)], "Poor Metabolizer")["table"][0]
    assert pm["ce_mg_l"] > rows[2]["ce_mg_l"] and pm["hr_bpm"] < rows[2]["hr_bpm"]


def test_negative_inotropy_lowers_ef_at_fixed_heart_rate():
    solver = Circulation()
    base = solver.steady_state(DEFAULT_PARAMS).metrics
    p = apply_effect(DEFAULT_PARAMS, 0.2).with_(hr_bpm=DEFAULT_PARAMS.hr_bpm)
    assert p.lv_emax_mmhg_ml < DEFAULT_PARAMS.lv_emax_mmhg_ml
    m = solver.steady_state(p).metrics
    assert m["ef_pct"] < base["ef_pct"] - 2 and m["esv_ml"] > base["esv_ml"]
