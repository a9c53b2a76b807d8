"""FMF competing-risks screening: hand-computed priors and medians, the closed-form posterior
against adaptive quadrature of an independently written integrand, missing markers, the
batch command, and detection rates in a population drawn from the model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from twinflow.cli import main as cli_main
from twinflow.models.pregnancy import screening as S
from twinflow.models.pregnancy.batch import INPUT_COLUMNS, OUTPUT_COLUMNS
from twinflow.models.pregnancy.population import PUBLISHED_DR_AT_10PCT, performance, simulate

PAROUS = S.Maternal(age_years=38.0, weight_kg=80.0, height_cm=160.0, ethnicity="black", smoker=False,
                    conception="ivf", chronic_hypertension=False, diabetes="none", mother_had_pe=True,
                    parous=True, previous_pe=False, previous_ga_weeks=39.0, interval_years=4.0)


# ----------------------------------------------------------------------------- by hand
def test_prior_mean_by_hand():
    # Wright 2015 terms written out for this woman
    mu = (54.3637 - 0.206886 * 3 + 0.11711 * (160 - 164) - 2.6786 - 1.6327
          + (-4.335 - 4.15137651 / 4 + 9.21473572 / 2 + 0.01549673 * 15 ** 2)
          - 0.0694096 * 11 - 1.7154)
    assert S.prior_mean(PAROUS) == pytest.approx(mu, abs=1e-12)
    # chronic hypertension removes weight, family history and diabetes terms
    ch = S.Maternal(age_years=30, weight_kg=120, height_cm=164, chronic_hypertension=True, mother_had_pe=True,
                    diabetes="type2")
    assert S.prior_mean(ch) == pytest.approx(54.3637 - 7.2897, abs=1e-12)
    # previous PE: quadratic in previous GA, no interval term
    ppe = S.Maternal(age_years=30, weight_kg=69, height_cm=164, parous=True, previous_pe=True, previous_ga_weeks=30)
    assert S.prior_mean(ppe) == pytest.approx(54.3637 - 8.1667 + 0.0271988 * 36, abs=1e-12)


def test_prior_truncations_and_sle_aps_rule():
    base = dict(weight_kg=69, height_cm=164)
    assert S.prior_mean(S.Maternal(age_years=60, **base)) == S.prior_mean(S.Maternal(age_years=55, **base))
    assert S.prior_mean(S.Maternal(age_years=30, weight_kg=250, height_cm=164)) == \
        S.prior_mean(S.Maternal(age_years=30, weight_kg=190, height_cm=164))
    m = S.Maternal(age_years=30, weight_kg=69, height_cm=164, parous=True, previous_ga_weeks=40, interval_years=30)
    assert S.prior_mean(m) == S.prior_mean(S.Maternal(age_years=30, weight_kg=69, height_cm=164, parous=True,
                                                      previous_ga_weeks=40, interval_years=15))
    sle = S.Maternal(age_years=30, weight_kg=69, height_cm=164, sle=True)
    both = S.Maternal(age_years=30, weight_kg=69, height_cm=164, sle=True, aps=True)
    assert S.prior_mean(sle) == pytest.approx(54.3637)                      # calculator: both needed
    assert S.prior_mean(sle, sle_aps="either") == pytest.approx(54.3637 - 3.0519)
    assert S.prior_mean(both) == pytest.approx(54.3637 - 3.0519)


def test_medians_by_hand():
    m = PAROUS
    d = 12.0 * 7 - 77
    w, h, a = 11.0, -4.0, 3.0
    map_ = 10 ** (1.9364 + 0.000428017 * d - 0.000028811 * d * d + 0.0012053 * w - 0.00000928 * w * w
                  - 0.00018157 * h - 0.00393 + 0.00624 - 0.00663 + 0.00082639 * (4 - 2))
    pi = 10 ** (0.26457 - 0.004838365 * d - 0.00087443 * w + 0.00000733 * w * w - 0.00064175 * a + 0.02162 - 0.00295)
    plgf = 10 ** (1.430615169 + 0.012263018 * d + 0.000149743 * d * d - 0.001682761 * w + 0.00000878 * w * w
                  + 0.002174191 * a + 0.193561059 - 0.022250585 + 0.02075005)
    assert S.median_map(m, 12.0) == pytest.approx(map_, rel=1e-12)
    assert S.median_uta_pi(m, 12.0) == pytest.approx(pi, rel=1e-12)
    assert S.median_plgf(m, 12.0, "kryptor") == pytest.approx(plgf, rel=1e-12)
    # analysers differ only by the intercept
    assert S.median_plgf(m, 12.0, "cobas") / S.median_plgf(m, 12.0, "delfia") == \
        pytest.approx(10 ** (1.542535524 - 1.332959332), rel=1e-12)
    # weight caps for the MoMs: 130 kg (MAP, UtA-PI), 128 kg (PlGF)
    heavy = S.Maternal(age_years=30, weight_kg=170, height_cm=164)
    assert S.median_map(heavy, 12) == S.median_map(S.Maternal(age_years=30, weight_kg=130, height_cm=164), 12)
    assert S.median_plgf(heavy, 12, "delfia") == S.median_plgf(
        S.Maternal(age_years=30, weight_kg=128, height_cm=164), 12, "delfia")
    with pytest.raises(ValueError, match="analyser"):
        S.median_plgf(m, 12.0, "elisa")


def test_prior_only_risk_is_the_truncated_normal():
    mu, sd = S.prior_mean(PAROUS), S.PRIOR_SD_WEEKS
    phi = stats.norm(mu, sd).cdf
    r = S.screen(PAROUS)
    for G in (32, 34, 37):
        expect = (phi(G) - phi(24)) / (1 - phi(24))
        assert r.prior_risk[str(G)] == pytest.approx(expect, rel=1e-10)
        assert r.risk[str(G)] == pytest.approx(expect, rel=1e-10)      # no markers: posterior = prior
    assert r.risk["term"] == pytest.approx((phi(42) - phi(37)) / (1 - phi(24)), rel=1e-10)
    assert r.markers_used == []


# ----------------------------------------------------------------------------- posterior
def _quad_risk(mu, x_full, measured, G):
    """Independent computation: scipy.stats multivariate normal density and adaptive quadrature."""
    idx = [i for i, on in enumerate(measured) if on]
    cov = S.COVARIANCE[np.ix_(idx, idx)]
    x = np.clip(np.asarray(x_full)[idx], -S.LOG10_MOM_LIMITS[idx], S.LOG10_MOM_LIMITS[idx])
    b0 = np.array([0.088997, 0.5861, -0.92352])[idx]
    b1 = np.array([-0.0016711, -0.014233, 0.021584])[idx]

    def f(g):
        mean = np.array([b0[j] + b1[j] * g if g < -b0[j] / b1[j] else 0.0 for j in range(len(idx))])
        lik = stats.multivariate_normal(mean, cov).pdf(x) if idx else 1.0
        return lik * stats.norm.pdf(g, mu, S.PRIOR_SD_WEEKS)

    kinks = sorted(-b0 / b1)

    def mass(lo, hi):
        pts = [lo] + [k for k in kinks if lo < k < hi] + [hi]
        return sum(integrate.quad(f, a, b, epsabs=0, epsrel=1e-12, limit=200)[0] for a, b in zip(pts[:-1], pts[1:]))

    return mass(24, G) / mass(24, 120)


@pytest.mark.parametrize("mu,x,measured", [
    (50.0, [0.02, 0.10, -0.15], (True, True, True)),
    (41.0, [0.06, 0.25, -0.40], (True, True, True)),       # high risk
    (58.0, [-0.03, -0.20, 0.20], (True, True, True)),      # low risk
    (47.0, [0.05, 0.90, -0.70], (True, True, True)),       # PI and PlGF beyond their truncation
    (50.0, [0.04, 0.0, -0.20], (True, False, True)),       # UtA-PI not measured
    (45.0, [0.0, 0.15, 0.0], (False, True, False)),        # UtA-PI only
])
def test_closed_form_posterior_matches_quadrature(mu, x, measured):
    lx = np.where(measured, x, np.nan)
    ours = S.risks_many(np.array([mu]), lx[None, :], [32, 34, 37])[0]
    for G, r in zip((32, 34, 37), ours):
        assert r == pytest.approx(_quad_risk(mu, x, measured, G), rel=1e-7)


def test_missing_markers_drop_out_of_the_likelihood():
    k_all = S.Markers(ga_weeks=12.4, map_mmhg=95.0, uta_pi=2.2, plgf_pg_ml=18.0, plgf_assay="delfia")
    k_no_pi = S.Markers(ga_weeks=12.4, map_mmhg=95.0, plgf_pg_ml=18.0, plgf_assay="delfia")
    a, b = S.screen(PAROUS, k_all), S.screen(PAROUS, k_no_pi)
    assert b.moms["uta_pi"] is None and b.markers_used == ["map", "plgf"]
    assert a.moms["map"] == b.moms["map"] and a.moms["plgf"] == b.moms["plgf"]
    mu = S.prior_mean(PAROUS)
    expect = _quad_risk(mu, [math.log10(b.moms["map"]), 0.0, math.log10(b.moms["plgf"])], (True, False, True), 37)
    assert b.risk["37"] == pytest.approx(expect, rel=1e-7)
    assert a.risk["37"] != pytest.approx(b.risk["37"], rel=1e-3)       # the PI did count when measured
    # a lab-reported PlGF MoM replaces the raw value and needs no analyser
    k_mom = S.Markers(ga_weeks=12.4, map_mmhg=95.0, uta_pi=2.2, plgf_mom=a.moms["plgf"], plgf_pg_ml=999.0)
    assert S.screen(PAROUS, k_mom).risk["37"] == pytest.approx(a.risk["37"], rel=1e-12)


def test_log10_mom_truncation():
    mu = 48.0
    r1 = S.risks_many(np.array([mu]), np.array([[0.5, 1.0, -2.0]]), [37])[0, 0]
    r2 = S.risks_many(np.array([mu]), np.array([[0.12240759, 0.42161519, -0.56550992]]), [37])[0, 0]
    assert r1 == r2


def test_high_risk_pregnancy_is_screen_positive_with_aspirin_advice():
    k = S.Markers(ga_weeks=12.6, map_mmhg=102.0, uta_pi=2.6, plgf_pg_ml=14.0, plgf_assay="kryptor")
    r = S.screen(PAROUS, k)
    assert r.risk["37"] > 0.05 and r.screen_positive and "aspirin 150 mg" in r.recommendation
    assert r.risk["32"] < r.risk["34"] < r.risk["37"]
    low = S.screen(S.Maternal(age_years=28, weight_kg=60, height_cm=170),
                   S.Markers(ga_weeks=12.6, map_mmhg=78.0, uta_pi=1.2, plgf_pg_ml=45.0, plgf_assay="delfia"))
    assert low.risk["37"] < 0.002 and not low.screen_positive
    assert S.screen(PAROUS, k, cutoff=0.9).screen_positive is False


def test_sflt_plgf_ratio_rule_out():
    assert S.sflt_plgf_interpretation(1900.0, 100.0)["rule_out_1_week"] is True
    assert S.sflt_plgf_interpretation(5000.0, 50.0)["ratio"] == pytest.approx(100.0)
    assert S.sflt_plgf_interpretation(5000.0, 50.0)["rule_out_1_week"] is False


# ----------------------------------------------------------------------------- batch command
def _write(tmp_path, rows):
    p = tmp_path / "in.tsv"
    p.write_text("\t".join(INPUT_COLUMNS) + "\n" + "".join("\t".join(r.get(c, "") for c in INPUT_COLUMNS) + "\n"
                                                          for r in rows))
    return p


ROW = dict(id="w1", ga_weeks="12.5", age_years="38", weight_kg="80", height_cm="160", ethnicity="black", smoker="no",
           conception="ivf", chronic_hypertension="no", diabetes="none", sle="no", aps="no", mother_had_pe="yes",
           parous="yes", previous_pe="no", previous_ga_weeks="39", interval_years="4", map_mmhg="95", uta_pi="2.2",
           plgf="18", plgf_assay="delfia")


def test_pe_risk_command(tmp_path, capsys):
    inp = _write(tmp_path, [ROW, dict(ROW, id="w2", uta_pi="", plgf="", plgf_assay="", biophysical_ga_weeks="12.3")])
    out = tmp_path / "out.tsv"
    assert cli_main(["pe-risk", str(inp), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].split("\t") == list(OUTPUT_COLUMNS)
    r1 = dict(zip(OUTPUT_COLUMNS, lines[1].split("\t")))
    r2 = dict(zip(OUTPUT_COLUMNS, lines[2].split("\t")))
    k = S.Markers(ga_weeks=12.5, map_mmhg=95, uta_pi=2.2, plgf_pg_ml=18, plgf_assay="delfia")
    ref = S.screen(PAROUS, k)
    assert float(r1["risk_37"]) == pytest.approx(ref.risk["37"], rel=1e-5)
    assert float(r1["prior_risk_37"]) == pytest.approx(ref.prior_risk["37"], rel=1e-5)
    assert float(r1["mom_plgf"]) == pytest.approx(ref.moms["plgf"], rel=1e-5)
    assert r1["screen_positive"] == "yes"
    assert r2["mom_uta_pi"] == "" and r2["mom_plgf"] == "" and r2["mom_map"] != ""
    ref2 = S.moms(PAROUS, S.Markers(ga_weeks=12.5, map_mmhg=95, biophysical_ga_weeks=12.3))
    assert float(r2["mom_map"]) == pytest.approx(ref2["map"], rel=1e-5)
    # a stricter cut-off changes only the classification
    capsys.readouterr()
    assert cli_main(["pe-risk", str(inp), "--cutoff-one-in", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("\tno")


@pytest.mark.parametrize("change,message", [
    (dict(ethnicity="asian"), "ethnicity must be one of"),
    (dict(smoker="y"), "smoker must be yes or no"),
    (dict(plgf_assay=""), "PlGF needs its analyser"),
    (dict(plgf_assay="elisa"), "plgf_assay must be one of"),
    (dict(ga_weeks="20"), "outside the first-trimester window"),
    (dict(interval_years=""), "interval_years is empty"),
    (dict(map_mmhg="high"), "map_mmhg must be a number"),
])
def test_pe_risk_bad_rows_name_row_and_problem(tmp_path, capsys, change, message):
    inp = _write(tmp_path, [ROW, dict(ROW, id="w7", **change)])
    assert cli_main(["pe-risk", str(inp)]) == 2
    err = capsys.readouterr().err
    assert "patient w7" in err and "line 3" in err and message in err and "Traceback" not in err


def test_pe_risk_rejects_wrong_columns(tmp_path, capsys):
    p = tmp_path / "in.tsv"
    p.write_text("\t".join(INPUT_COLUMNS[:-1]) + "\tplgf_machine\n")
    assert cli_main(["pe-risk", str(p)]) == 2
    err = capsys.readouterr().err
    assert "missing column(s) plgf_assay" in err and "unknown column(s) plgf_machine" in err


# ----------------------------------------------------------------------------- population
def test_simulated_population_gives_about_the_published_detection_rates():
    pop = simulate(40000, seed=7)
    full = performance(pop)
    mf = performance(pop, markers=(False, False, False))
    assert full["screen_positive_rate"] == pytest.approx(0.10, abs=1e-3)
    assert full["n_pe_lt_37"] > 200
    # Tan 2018 at a 10 % screen-positive rate: 90 % (< 32), 75 % (< 37), 41 % (term)
    assert abs(full["dr_pe_lt_32"] - PUBLISHED_DR_AT_10PCT["pe_lt_32"]) < 0.10
    assert abs(full["dr_pe_lt_37"] - PUBLISHED_DR_AT_10PCT["pe_lt_37"]) < 0.10
    assert abs(full["dr_pe_ge_37"] - PUBLISHED_DR_AT_10PCT["pe_ge_37"]) < 0.10
    # the biomarkers add much to maternal factors for preterm PE, little for term PE
    assert full["dr_pe_lt_37"] - mf["dr_pe_lt_37"] > 0.15
    assert full["dr_pe_ge_37"] - mf["dr_pe_ge_37"] < 0.10
