"""The built-in models' trial parts (twinflow.models.cardiac.trial, twinflow.models.oncology.trial)
on small synthetic twins: the population draw recovers what it was given, and the simulated
endpoints agree with the models' own arm simulations and with what the schedules imply."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from twinflow.models.base import SourceTwin


# ----------------------------------------------------------------------------- cardiac
def cardiac_twin(tmp: Path, pid: str = "CARX") -> SourceTwin:
    from twinflow.models.cardiac.circulation import DEFAULT_PARAMS

    vals = DEFAULT_PARAMS.to_dict()
    est = ["lv_emax_mmhg_ml", "v_stressed_ml"]
    params = {k: {"value": v, "estimated": k in est, "sd": 0.1 * v if k in est else None} for k, v in vals.items()}
    doc = {"patient_id": pid, "parameters": params,
           "model_results": {"calibration": {"estimated": est, "correlation": [[1.0, 0.5], [0.5, 1.0]]},
                             "cardiac_function": {"ef_percent": 35.0, "edv_ml": 180.0}}}
    d = tmp / pid / "twin"
    d.mkdir(parents=True)
    (d / "twin.json").write_text(json.dumps(doc))
    return SourceTwin(pid, d, doc, {"age_years": 60, "sex": "M"})


def test_cardiac_population_recovers_frequencies_and_posterior(tmp_path):
    from twinflow.models.cardiac.trial import CardiacTrial

    tm = CardiacTrial()
    from twinflow.config import _fill_defaults

    opts = _fill_defaults({}, tm.population_schema)
    src = cardiac_twin(tmp_path)
    n = 4000
    pop = tm.population([src], opts, n, np.random.default_rng(1))
    ph = [p["covariates"]["cyp2d6_phenotype"] for p in pop]
    for name, pct in (("Poor Metabolizer", 7.5), ("Normal Metabolizer", 84.5)):
        f = ph.count(name) / n
        assert abs(f - pct / 100) < 4 * np.sqrt(pct / 100 * (1 - pct / 100) / n), (name, f)
    le = np.log([p["params"]["circ.lv_emax_mmhg_ml"] / src.doc["parameters"]["lv_emax_mmhg_ml"]["value"] for p in pop])
    lv = np.log([p["params"]["circ.v_stressed_ml"] / src.doc["parameters"]["v_stressed_ml"]["value"] for p in pop])
    assert le.std() == pytest.approx(0.1, rel=0.06) and abs(le.mean()) < 0.01
    assert np.corrcoef(le, lv)[0, 1] == pytest.approx(0.5, abs=0.05)
    hr = np.array([p["covariates"]["hr_baseline_bpm"] for p in pop])
    assert hr.std() == pytest.approx(10.0, rel=0.06) and hr.min() >= 45 and hr.max() <= 120


def test_cardiac_virtual_patient_matches_the_twins_arm_simulation(tmp_path):
    from twinflow.models.cardiac.arms import simulate_arms
    from twinflow.models.cardiac.circulation import DEFAULT_PARAMS
    from twinflow.models.cardiac.trial import CardiacTrial

    tm = CardiacTrial()
    circ = {f"circ.{k}": v for k, v in DEFAULT_PARAMS.to_dict().items()}
    opts = {"timepoint": "trough", "days": 7.0}
    res = {}
    for ph in ("Normal Metabolizer", "Poor Metabolizer"):
        patient = {"source": "X", "covariates": {}, "params": {**circ, "cyp2d6_phenotype": ph}}
        placebo = tm.simulate_virtual(patient, {"regimen": {"dose_mg": 0.0, "interval_h": 24.0}}, opts, {})
        assert placebo["hr_bpm_change"] == 0.0 and placebo["ce_ng_ml"] == 0.0
        on = tm.simulate_virtual(patient, {"regimen": {"dose_mg": 100.0, "interval_h": 12.0}}, opts, {})
        ref = simulate_arms(DEFAULT_PARAMS, [{"name": "m", "dose_mg": 100.0, "interval_h": 12.0}], ph)["table"][0]
        assert on["hr_bpm"] == pytest.approx(ref["hr_bpm"], abs=0.05)
        assert on["sbp_mmhg"] == pytest.approx(ref["sbp_mmhg"], abs=0.3)
        res[ph] = on["hr_bpm_change"]
    assert res["Poor Metabolizer"] < res["Normal Metabolizer"] < 0          # PMs: more exposure, larger fall


# ----------------------------------------------------------------------------- oncology
def oncology_twin(tmp: Path, pid: str = "ONCX", shape=(28, 28, 14), spacing=(2.0, 2.0, 3.0)) -> SourceTwin:
    aff = np.diag([*spacing, 1.0])
    idx = np.indices(shape, dtype=float)
    c = [(s - 1) / 2 for s in shape]
    r2 = sum(((idx[i] - c[i]) * spacing[i]) ** 2 for i in range(3))
    tissue = np.ones(shape, np.float32)
    tissue[[0, -1]] = 0
    tissue[:, [0, -1]] = 0
    tissue[:, :, [0, -1]] = 0
    u0 = (np.exp(-r2 / 60.0) * tissue).astype(np.float32)
    d = tmp / pid / "twin"
    (d / "maps").mkdir(parents=True)
    for k, a in (("initial_density", u0), ("p_wm", tissue), ("p_gm", np.zeros(shape, np.float32)), ("tissue", tissue)):
        nib.save(nib.Nifti1Image(a, aff), str(d / "maps" / f"{k}.nii.gz"))
    params = {"d_w_mm2_day": {"value": 0.1, "sd": 0.005, "estimated": True, "identifiable": True},
              "k_per_day": {"value": 0.05, "sd": 0.001, "estimated": True, "identifiable": True},
              "alpha_per_gy": {"value": 0.03, "sd": 0.1, "estimated": True, "identifiable": False},
              "kappa_l_per_mg_h": {"value": 0.002, "estimated": False, "identifiable": False},
              "gm_ratio": {"value": 0.1}, "ab_ratio_gy": {"value": 10.0}}
    doc = {"patient_id": pid, "parameters": params, "model_results": {}}
    (d / "twin.json").write_text(json.dumps(doc))
    return SourceTwin(pid, d, doc, {"age_years": 55, "sex": "F", "height_cm": 170, "weight_kg": 70})


def test_resection_and_coarsening():
    from twinflow.models.oncology.trial import coarsen, resect

    rng = np.random.default_rng(0)
    u = rng.random((10, 12, 8)).astype(np.float32)
    enh = int((u >= 0.8).sum())
    assert int((resect(u, 1.0) >= 0.8).sum()) == 0
    assert int((resect(u, 0.5) >= 0.8).sum()) == enh - round(0.5 * enh)
    assert np.array_equal(resect(u, 0.0), u)
    c, sp = coarsen({"initial_density": u, "p_wm": u, "p_gm": u}, (2.0, 2.0, 3.0))
    assert sp == (4.0, 4.0, 6.0) and c["initial_density"].shape == (5, 6, 4)
    assert float(c["initial_density"].sum()) * 8 == pytest.approx(float(u.sum()), rel=1e-5)     # cells conserved


def test_oncology_population_and_endpoints(tmp_path):
    from twinflow.config import _fill_defaults
    from twinflow.models.oncology.trial import OncologyTrial

    tm = OncologyTrial()
    src = oncology_twin(tmp_path)
    opts = _fill_defaults({"resection": {"biopsy": 1.0}}, tm.population_schema)
    pop = tm.population([src], opts, 400, np.random.default_rng(2))
    d = np.log([p["params"]["d_w_mm2_day"] for p in pop])
    a = np.log([p["params"]["alpha_per_gy"] for p in pop])
    # identified D_w: the twin's value with sqrt(0.05^2 + 0.25^2) spread; unidentified alpha: the 0.02-0.06 range
    assert np.exp(d.mean()) == pytest.approx(0.1, rel=0.05) and d.std() == pytest.approx(np.hypot(0.05, 0.25), rel=0.12)
    assert np.exp(a.mean()) == pytest.approx(np.sqrt(0.02 * 0.06), rel=0.05)
    assert np.mean((np.exp(a) > 0.02) & (np.exp(a) < 0.06)) == pytest.approx(0.95, abs=0.035)
    sim = _fill_defaults({"horizon_days": 540, "assessment_interval_days": 60, "death_volume_ml": 30.0},
                         tm.simulation_schema)
    patient = {"source": src.patient_id, "covariates": {}, "params": {
        "d_w_mm2_day": 0.1, "k_per_day": 0.05, "alpha_per_gy": 0.04, "kappa_l_per_mg_h": 0.002, "gm_ratio": 0.1,
        "ab_ratio_gy": 10.0, "resection_fraction": 0.0, "bsa_m2": 1.8}}
    srcs = {src.patient_id: src}
    out = {s: tm.simulate_virtual(patient, {"regimen": {"schedule": s, "start_delay_days": 0, "adjuvant_cycles": 6}},
                                  sim, srcs) for s in ("no_treatment", "rt_60gy_30fx", "stupp_60gy_30fx_tmz")}
    os_ = {s: o["os"]["time"] for s, o in out.items()}
    assert os_["no_treatment"] < os_["rt_60gy_30fx"] < os_["stupp_60gy_30fx_tmz"], os_
    for o in out.values():
        assert o["pfs"]["time"] <= o["os"]["time"] and o["pfs"]["event"]
    # the same patient again: identical; on the coarse grid: close (reduced-order option)
    again = tm.simulate_virtual(patient, {"regimen": {"schedule": "rt_60gy_30fx"}}, sim, srcs)
    assert again == out["rt_60gy_30fx"]
    coarse = tm.simulate_virtual(patient, {"regimen": {"schedule": "rt_60gy_30fx"}}, dict(sim, grid="coarse"), srcs)
    assert abs(coarse["os"]["time"] - os_["rt_60gy_30fx"]) <= 0.15 * os_["rt_60gy_30fx"]


# ----------------------------------------------------------------------------- pregnancy
def test_pregnancy_population_screening_and_aspirin():
    from twinflow.config import _fill_defaults
    from twinflow.models.pregnancy.population import performance, simulate
    from twinflow.models.pregnancy.trial import PregnancyTrial

    tm = PregnancyTrial()
    opts = _fill_defaults({}, tm.population_schema)
    n = 12000
    pop = tm.population([], opts, n, np.random.default_rng(4))
    sp = np.array([w["covariates"]["screen_positive"] for w in pop])
    # the same generative model as the pregnancy module's own screening check: the same
    # screen-positive rate at 1 in 100 within sampling error
    ref = performance(simulate(n, seed=5))["screen_positive_rate_at_1_in_100"]
    assert abs(sp.mean() - ref) < 4 * np.sqrt(ref * (1 - ref) * 2 / n), (sp.mean(), ref)
    placebo = [tm.simulate_virtual(w, {"regimen": {"aspirin": False}}, {}, {}) for w in pop]
    aspirin = [tm.simulate_virtual(w, {"regimen": {"aspirin": True, "odds_ratio": 0.38}}, {}, {}) for w in pop]
    y0 = np.array([o["preterm_pe"] for o in placebo])
    y1 = np.array([o["preterm_pe"] for o in aspirin])
    assert not (y1 & ~y0).any()                                         # aspirin never causes preterm PE
    assert all(a["term_pe"] == b["term_pe"] for a, b in zip(placebo, aspirin))   # term PE unchanged
    # each woman keeps her preterm PE with probability r'/r (odds times 0.38): the expected count
    r = np.array([w["params"]["risk_pe_lt37"] for w in pop])[y0]
    rp = 0.38 * r / (1 - r) / (1 + 0.38 * r / (1 - r))
    expected = float((rp / r).sum())
    assert abs(y1.sum() - expected) < 4 * np.sqrt((rp / r * (1 - rp / r)).sum()) + 1, (y1.sum(), expected)
    # preterm PE prevalence in the drawn population near the screening cohort's 0.7 % (Rolnik 2017)
    assert 0.004 < y0.mean() < 0.012
