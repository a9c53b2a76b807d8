"""Statistical honesty of the trial analysis (twinflow.trials.analysis), on endpoints drawn
with known effects: the tests reject at the nominal 5 % when the arms are identical, the
95 % intervals cover a built-in effect at the nominal rate, and the simulated power follows
the sample size as theory says.  Every rate is checked against its 99.9 % binomial band
(one test of several rates must not fail by chance more than rarely)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from twinflow.trials import analysis as A  # noqa: E402

N_TRIALS = 200


def band(p: float, n: int = N_TRIALS, level: float = 0.999) -> tuple[float, float]:
    lo = stats.binom.ppf((1 - level) / 2, n, p) / n
    hi = stats.binom.ppf(1 - (1 - level) / 2, n, p) / n
    return lo, hi


def exp_arm(rng, n, rate, censor=150.0):
    t = rng.exponential(1.0 / rate, n)
    return np.minimum(t, censor), t <= censor


def test_logrank_fast_equals_lifelines():
    rng = np.random.default_rng(3)
    for _ in range(10):
        (t1, e1), (t0, e0) = exp_arm(rng, 37, 0.012), exp_arm(rng, 41, 0.01)
        t1, t0 = np.round(t1), np.round(t0)                     # ties
        assert A.logrank_fast(t1, e1, t0, e0) == pytest.approx(A.logrank_p(t1, e1, t0, e0), rel=1e-9)


def test_type_one_error_time_to_event_cox_and_logrank():
    rng = np.random.default_rng(20240610)
    cox = lr = 0
    for _ in range(N_TRIALS):
        (t1, e1), (t0, e0) = exp_arm(rng, 40, 0.01), exp_arm(rng, 40, 0.01)
        cox += A.cox_hr(t1, e1, t0, e0)["p"] < 0.05
        lr += A.logrank_fast(t1, e1, t0, e0) < 0.05
    lo, hi = band(0.05)
    assert lo <= cox / N_TRIALS <= hi, cox
    assert lo <= lr / N_TRIALS <= hi, lr


def test_type_one_error_mean_difference_and_odds_ratio():
    rng = np.random.default_rng(20240611)
    n = 400
    md = sum(A.mean_difference(rng.normal(0, 1, 30), rng.normal(0, 1, 30))["p"] < 0.05 for _ in range(n))
    orr = sum(A.odds_ratio(rng.random(80) < 0.3, rng.random(80) < 0.3)["p"] < 0.05 for _ in range(n))
    lo, hi = band(0.05, n)
    assert lo <= md / n <= hi, md
    assert lo <= orr / n <= hi, orr


def test_interval_coverage_of_known_effects():
    rng = np.random.default_rng(20240612)
    hr_true, delta, or_true, p0 = 0.7, 0.4, 0.5, 0.3
    p1 = or_true * p0 / (1 - p0) / (1 + or_true * p0 / (1 - p0))
    cover = {"hr": 0, "md": 0, "or": 0}
    for _ in range(N_TRIALS):
        (t1, e1), (t0, e0) = exp_arm(rng, 60, 0.01 * hr_true), exp_arm(rng, 60, 0.01)
        c = A.cox_hr(t1, e1, t0, e0)
        cover["hr"] += c["ci_low"] <= hr_true <= c["ci_high"]
        m = A.mean_difference(rng.normal(delta, 1, 40), rng.normal(0, 1, 40))
        cover["md"] += m["ci_low"] <= delta <= m["ci_high"]
        o = A.odds_ratio(rng.random(150) < p1, rng.random(150) < p0)
        cover["or"] += o["ci_low"] <= or_true <= o["ci_high"]
    lo, hi = band(0.95)
    for k, v in cover.items():
        assert lo <= v / N_TRIALS <= hi, (k, v)


def test_power_by_resampling_follows_theory():
    """Power of Welch's test for a standardised effect of 0.5, by resampling a large simulated
    population (the way the trial's power curve is made), against the noncentral t power."""
    import pandas as pd

    rng = np.random.default_rng(20240613)
    pool = {"treated": pd.DataFrame({"y": rng.normal(0.5, 1, 4000), "status": "ok"}),
            "control": pd.DataFrame({"y": rng.normal(0.0, 1, 4000), "status": "ok"})}
    pw = A.power_curve(pool, "control", ["treated"], "y", "continuous",
                       {"sizes": [10, 30, 60], "replicates": 300, "seed": 5}, 0.05)
    for row in pw["comparisons"][0]["curve"]:
        n = row["n_per_arm"]
        df = 2 * n - 2
        nc = 0.5 / math.sqrt(2.0 / n)
        q = stats.t.ppf(0.975, df)
        theory = stats.nct.sf(q, df, nc) + stats.nct.cdf(-q, df, nc)
        assert abs(row["power"] - theory) <= 3.3 * math.sqrt(theory * (1 - theory) / 300) + 0.01, (n, row, theory)
    powers = [r["power"] for r in pw["comparisons"][0]["curve"]]
    assert powers == sorted(powers)


def test_type_one_error_through_the_engine():
    """Identical arms through the whole engine (draw, eligibility, stratified randomisation,
    chunks, gather, analysis): the difference in means rejects at the nominal rate."""
    from trial_toys import AnalyticTrial, trial_config
    from twinflow.trials.sampling import population_table
    from twinflow.trials.simulate import gather, simulate_chunk

    tm = AnalyticTrial()
    cfg = trial_config(30, endpoints=["y", "response"], randomisation={"strata": ["group"]},
                       eligibility=[{"field": "age_years", "max": 80}])
    rejections = 0
    for s in range(N_TRIALS):
        cfg["seed"], cfg["randomisation"]["seed"] = s, 10_000 + s
        pop = population_table(tm, [], cfg)
        pts = gather(pop, [simulate_chunk(tm, pop, cfg, a, 0, {}) for a in ("control", "treated")])
        g1, g0 = pts[pts["arm"] == "treated"], pts[pts["arm"] == "control"]
        rejections += A.mean_difference(g1["y"], g0["y"])["p"] < 0.05
    lo, hi = band(0.05)
    assert lo <= rejections / N_TRIALS <= hi, rejections
