"""Uteroplacental model (transmission line against an independent ODE, reference centiles),
per-visit calibration recovery, and the PregnancyTwin plug-in end to end on the demo
pregnancies (through a PatientContext, not Snakemake)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from twinflow.demo import pregnancy as demo
from twinflow.io.labs import ingest_labs
from twinflow.models.base import PatientContext
from twinflow.models.pregnancy import uteroplacental as U
from twinflow.models.pregnancy.calibrate import calibrate_visit
from twinflow.models.pregnancy.forecast import ASPRE_OR, _with_or
from twinflow.layout import Layout
from twinflow.models.pregnancy.model import PregnancyTwin
from twinflow.models.pregnancy.waveform import analyse
from twinflow.sheets import ImageRow
from twinflow.twin.artefact import TwinBuilder


# ----------------------------------------------------------------------------- the model
def test_lossless_matched_line_has_its_characteristic_impedance(monkeypatch):
    monkeypatch.setattr(U, "MU", 0.0)
    p = U.UterineParams(r_p_mmhg_s_ml=0.0, c_d_ml_mmhg=0.001, radius_cm=0.12, wave_speed_cm_s=800.0)
    w = np.array([1.0, 7.5, 40.0, 200.0])
    z = U.input_impedance(w, p)
    z0 = 1.06 * 800.0 / (math.pi * 0.12 ** 2) / 1333.22
    assert np.allclose(z, z0, rtol=1e-10)


def test_short_line_equals_windkessel_solved_as_an_ode():
    """A 0.5 mm line is the three-element Windkessel Z0 + R || C: compare the harmonic solution
    with scipy's ODE integration of the same circuit driven by the same pressure."""
    mc = U.maternal_cycle(20.0)
    p = U.UterineParams(r_p_mmhg_s_ml=20.0, c_d_ml_mmhg=0.004, radius_cm=0.12, wave_speed_cm_s=800.0,
                        length_cm=0.05)
    q_harm = U.inlet_flow(mc.p_ao_mmhg, mc.period_s, p, n_harmonics=90)
    z0 = U.characteristic_impedance(p) + 8 * U.MU / (math.pi * p.radius_cm ** 4) / U.MMHG * p.length_cm
    T, n = mc.period_s, mc.p_ao_mmhg.size
    tt = np.arange(n) * T / n

    def pin(t):
        return np.interp(np.mod(t, T), np.append(tt, T), np.append(mc.p_ao_mmhg, mc.p_ao_mmhg[0]))

    def rhs(t, y):                       # y = pressure over the R || C part
        q = (pin(t) - p.p_out_mmhg - y[0]) / z0
        return [(q - y[0] / p.r_p_mmhg_s_ml) / p.c_d_ml_mmhg]

    sol = solve_ivp(rhs, (0, 12 * T), [50.0], method="LSODA", rtol=1e-9, atol=1e-9, max_step=T / 400,
                    t_eval=11 * T + tt)
    q_ode = (pin(sol.t) - p.p_out_mmhg - sol.y[0]) / z0
    assert np.mean(q_harm) == pytest.approx(np.mean(q_ode), rel=1e-3)
    assert np.max(np.abs(q_harm - q_ode)) < 0.03 * np.ptp(q_ode)


def test_normal_remodelling_reproduces_the_reference_median_and_its_centiles():
    for w in range(11, 42, 2):
        assert U.model_pi(w, U.uterine_params(w)) == pytest.approx(float(U.gomez_median_pi(w)), rel=0.05), w
    # published anchors (Gomez 2008): median 1.79 at 11 weeks, 0.70 at 34, 0.65 at 41
    assert float(U.gomez_median_pi(11)) == pytest.approx(1.79, abs=0.01)
    assert float(U.gomez_median_pi(34)) == pytest.approx(0.70, abs=0.01)
    assert float(U.gomez_median_pi(41)) == pytest.approx(0.65, abs=0.01)
    assert float(U.gomez_median_pi(11) * math.exp(1.6448536 * U.gomez_log_sd(11))) == pytest.approx(2.70, abs=0.01)
    # impaired remodelling raises the PI above the 95th centile in the first trimester
    high = U.model_pi(12.0, U.uterine_params(12.0, log_offset=1.5))
    assert high > float(U.gomez_median_pi(12) * math.exp(1.6448536 * U.gomez_log_sd(12)))


def test_maternal_circulation_adapts_to_gestation():
    m0, m32 = U.maternal_cycle(0.0).metrics, U.maternal_cycle(32.0).metrics
    assert 1.3 <= m32["co_l_min"] / m0["co_l_min"] <= 1.5          # cardiac output +30-50 %
    assert m32["hr_bpm"] - m0["hr_bpm"] == pytest.approx(15.0 * 28 / 36, abs=1e-9)
    assert U.maternal_cycle(12.0).metrics["map_mmhg"] < m0["map_mmhg"]
    factor, mc = U.calibrate_map(12.0, 92.0)
    assert mc.metrics["map_mmhg"] == pytest.approx(92.0, abs=1e-6) and factor > 1.0


@pytest.mark.parametrize("truth", [
    dict(ga=12.5, r_p=30.0, tau=0.09, c=1000.0, r=0.115, f=1.0, hr=78.0),
    dict(ga=12.3, r_p=100.0, tau=0.02, c=900.0, r=0.10, f=1.25, hr=84.0),
    dict(ga=24.0, r_p=6.0, tau=0.09, c=1100.0, r=0.15, f=0.9, hr=80.0),
])
def test_calibration_recovers_identifiable_parameters(truth):
    mc = U.maternal_cycle(truth["ga"], hr_bpm=truth["hr"], r_sys_factor=truth["f"])
    up = U.UterineParams(r_p_mmhg_s_ml=truth["r_p"], c_d_ml_mmhg=truth["tau"] / truth["r_p"],
                         wave_speed_cm_s=truth["c"], radius_cm=truth["r"], length_cm=U.NORMAL_LENGTH_CM)
    v = U.velocity_envelope(mc.p_ao_mmhg, mc.period_s, up)
    n = v.size
    t = np.arange(4 * n) * mc.period_s / n
    vv = np.tile(v, 4) + np.random.default_rng(3).normal(0.0, 1.5, 4 * n)
    a = analyse(t, vv)
    cal = calibrate_visit(t, vv, a.onset_cycles(), mc.metrics["map_mmhg"], truth["ga"])
    est = cal.estimates
    assert est["r_sys_factor"] == pytest.approx(truth["f"], rel=0.01)
    assert est["r_p_mmhg_s_ml"] == pytest.approx(truth["r_p"], rel=0.08)
    assert est["wave_speed_cm_s"] == pytest.approx(truth["c"], rel=0.05)
    assert est["radius_cm"] == pytest.approx(truth["r"], rel=0.05)
    ident = cal.identifiability["identifiable"]
    for k in ("r_p_mmhg_s_ml", "wave_speed_cm_s", "radius_cm"):
        lo, hi = cal.ci95[k]
        assert lo < {"r_p_mmhg_s_ml": truth["r_p"], "wave_speed_cm_s": truth["c"], "radius_cm": truth["r"]}[k] < hi
    assert ident["wave_speed_cm_s"]
    assert cal.rms_residual_cm_s < 2.0
    # a stiff bed behind a high resistance hides its compliance: flagged, not reported as known
    if truth["tau"] < 0.05:
        assert not ident["c_d_ml_mmhg"]


def test_aspirin_odds_ratio_transformation():
    p = 0.05
    o = 0.38 * p / (1 - p)
    assert _with_or(p, 0.38) == pytest.approx(o / (1 + o), rel=1e-12)
    lo, hi = _with_or(p, ASPRE_OR[1]), _with_or(p, ASPRE_OR[2])
    assert lo < _with_or(p, 0.38) < hi < p


# ----------------------------------------------------------------------------- the twin
@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    root = tmp_path_factory.mktemp("preg_twin")
    truth = demo.generate(root / "data")
    rows = demo.sheet_rows("data")
    demo.write_pregnancies_tsv(root / "pregnancies.tsv", rows["pregnancies"])
    model = PregnancyTwin()
    out = {}
    for prow in rows["patients"]:
        pid = prow["patient_id"]
        imgs = [ImageRow(pid, r["visit"], r["date"], r["series"], str(root / r["path"]), r["path"])
                for r in rows["imaging"] if r["patient_id"] == pid]
        ctx = PatientContext(pid, dict(prow), imgs, [], Layout(str(root / "results")), {"forecast_samples": 8},
                             sheets={"pregnancies": [r for r in rows["pregnancies"] if r["patient_id"] == pid]})
        ingest_labs(root / prow["labs"], ctx.ingest / "labs.tsv", ctx.ingest / "labs_qc.json", patient=pid)
        for v in model.segment_visits(ctx):
            model.segment(ctx, v, ctx.segment_dir(v))
        model.estimate(ctx, ctx.results / "estimate")
        model.simulate(ctx, ctx.results / "estimate", ctx.results / "simulate")
        with TwinBuilder(ctx.results / "twin") as b:
            doc = b.commit(model.build_twin(ctx, b, ctx.results / "estimate", ctx.results / "simulate"))
        out[pid] = (ctx, doc, json.loads((ctx.results / "estimate/estimate.json").read_text()))
    return root, truth, model, out


def test_twin_screening_separates_the_demo_pregnancies(twins):
    _, truth, _, out = twins
    low, high = out["PREG001"][1]["model_results"]["screening"], out["PREG002"][1]["model_results"]["screening"]
    assert not low["screen_positive"] and low["risk"]["37"] < 0.002
    assert high["screen_positive"] and high["risk"]["37"] > 0.2
    assert "aspirin 150 mg" in high["recommendation"]
    # the lab PlGF (pg/mL) was generated from a known MoM with the FMF median of its analyser
    assert high["moms"]["plgf"] == pytest.approx(truth["PREG002"]["visits"]["V1"]["plgf_mom"], rel=1e-3)
    assert low["moms"]["plgf"] == pytest.approx(truth["PREG001"]["visits"]["V1"]["plgf_mom"], rel=1e-3)
    # the MAP used is the protocol mean of the four readings
    est = out["PREG002"][2]
    assert est["visits"][0]["map"]["n_readings"] == 4
    assert est["visits"][0]["map"]["map_mmhg"] == pytest.approx(truth["PREG002"]["visits"]["V1"]["map_mmhg"], abs=0.01)
    # sFlt-1/PlGF at 22 weeks: high in the high-risk pregnancy, rule-out in the low-risk one
    assert est["visits"][1]["sflt1_plgf"]["rule_out_1_week"] is False
    assert out["PREG001"][2]["visits"][1]["sflt1_plgf"]["rule_out_1_week"] is True


def test_twin_calibration_recovers_the_demo_truth(twins):
    _, truth, _, out = twins
    for pid in ("PREG001", "PREG002"):
        est = out[pid][2]
        assert est["calibration_visits"] == ["V1"] and est["holdout_visits"] == ["V2"]
        for side, c in est["calibration"]["V1"].items():
            tp = truth[pid]["visits"]["V1"]["sides"][side]["params"]
            assert c["estimates"]["r_p_mmhg_s_ml"] == pytest.approx(tp["r_p_mmhg_s_ml"], rel=0.05)
            assert c["estimates"]["wave_speed_cm_s"] == pytest.approx(tp["wave_speed_cm_s"], rel=0.03)
            assert c["estimates"]["radius_cm"] == pytest.approx(tp["radius_cm"], rel=0.03)
            assert c["estimates"]["r_sys_factor"] == pytest.approx(truth[pid]["parameters"]["r_sys_factor"],
                                                                  rel=0.02)
        # the remodelling state: ln R_p offset of each side within 0.1 of the truth
        t = truth[pid]["parameters"]
        for side, sign in (("LEFT", -1.0), ("RIGHT", 1.0)):
            assert est["state"]["sides"][side]["log_offset"] == pytest.approx(
                t["log_offset"] + sign * t["side_offset"], abs=0.1)


def test_twin_forecasts_held_out_visit_and_beats_the_naive_baseline_when_remodelling_is_impaired(twins):
    _, _, _, out = twins
    hi = out["PREG002"][2]["holdout"][0]
    assert abs(hi["forecast_pi_error"]) < 0.1 < abs(hi["naive_pi_error"])
    assert abs(hi["forecast_map_mmhg"] - hi["measured_map_mmhg"]) < 5.0
    lo = out["PREG001"][2]["holdout"][0]
    assert abs(lo["forecast_pi_error"]) < 0.1


def test_twin_arms_and_byte_for_byte_resimulation(twins):
    _, _, model, out = twins
    for pid in ("PREG001", "PREG002"):
        ctx, doc, _ = out[pid]
        twin_dir = ctx.results / "twin"
        for sim in doc["simulations"]:
            files = model.resimulate(twin_dir, doc, sim["name"])
            for rel, data in files.items():
                assert data == (twin_dir / rel).read_bytes(), (pid, rel)
    ctx, doc, _ = out["PREG002"]
    arms = {a["arm"]: a for a in doc["model_results"]["arms_summary"]}
    assert arms["aspirin"]["risk_pe_lt37_from_11w"] < arms["none"]["risk_pe_lt37_from_11w"]
    assert arms["aspirin"]["risk_lo"] < arms["aspirin"]["risk_pe_lt37_from_11w"] < arms["aspirin"]["risk_hi"]
    assert arms["antihypertensive"]["map_mmhg_at_28w"] == pytest.approx(arms["none"]["map_mmhg_at_28w"] - 10, abs=0.01)
    assert arms["antihypertensive"]["uterine_flow_ml_min_at_28w"] < arms["none"]["uterine_flow_ml_min_at_28w"]
    one = model.simulate_arm(ctx.results / "twin", doc, "aspirin")
    assert list(one) == ["arm_aspirin.tsv"] and one["arm_aspirin.tsv"].startswith(b"arm\tga_weeks")
    with pytest.raises(KeyError):
        model.simulate_arm(ctx.results / "twin", doc, "magnesium")
    sections = model.report_sections(ctx.results / "twin", doc)
    figures = [png for sec in sections for png, _ in sec.figures]
    assert len(figures) >= 4 and all(Path(png).is_file() for png in figures)
    summary = model.summary(doc)
    assert summary["screen_positive"] == doc["model_results"]["screening"]["screen_positive"]


def test_no_identifying_text_reaches_any_output(twins):
    root, _, _, out = twins
    for pid, (ctx, _, _) in out.items():
        for f in sorted(p for p in ctx.results.rglob("*") if p.is_file()):
            data = f.read_bytes()
            for secret in (b"DOE", b"JANE", b"99887766", b"1990-05-17", b"19900517"):
                assert secret not in data, (f, secret)
