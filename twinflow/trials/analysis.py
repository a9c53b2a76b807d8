"""The analysis of a trial: per-arm summaries, comparisons against the reference arm,
subgroups and power against sample size.

* time to event: Kaplan-Meier median with its 95 % interval per arm, log-rank test and the
  Cox proportional-hazards hazard ratio with a Wald interval (lifelines; Efron ties);
* continuous: difference in means with Welch's interval and test;
* binary: odds ratio with Woolf's (logit) interval and Wald test, 0.5 added to every cell
  when one is empty (Haldane-Anscombe).

Intervals are ``1 - alpha`` two-sided.  Power is estimated by simulation: for each sample
size, ``replicates`` trials of that size per arm are resampled (with replacement) from each
arm's simulated patients and analysed with the endpoint's test (log-rank for time to
event); the power is the fraction with ``p < alpha``, given with its binomial standard error.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats

TIME_UNITS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12.0}
EFFECTS = {"time_to_event": "hazard_ratio", "continuous": "mean_difference", "binary": "odds_ratio"}


def _f(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------- single tests
def km_median(t: np.ndarray, e: np.ndarray, alpha: float = 0.05) -> tuple[float | None, float | None, float | None]:
    """Kaplan-Meier median and its (1 - alpha) interval (None where not reached)."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    if len(t) == 0:
        return None, None, None
    kmf = KaplanMeierFitter(alpha=alpha).fit(t, e)
    ci = median_survival_times(kmf.confidence_interval_)
    return _f(kmf.median_survival_time_), _f(ci.iloc[0, 0]), _f(ci.iloc[0, 1])


def logrank_p(t1, e1, t0, e0) -> float | None:
    from lifelines.statistics import logrank_test

    if len(t1) == 0 or len(t0) == 0 or (np.sum(e1) + np.sum(e0)) == 0:
        return None
    return _f(logrank_test(t1, t0, event_observed_A=e1, event_observed_B=e0).p_value)


def logrank_fast(t1, e1, t0, e0) -> float | None:
    """The log-rank test's p value computed in numpy (equal to lifelines' ``logrank_test`` to
    rounding, tested): for the thousands of resampled trials of a power curve."""
    t = np.r_[np.asarray(t1, float), np.asarray(t0, float)]
    e = np.r_[np.asarray(e1, bool), np.asarray(e0, bool)]
    g = np.r_[np.ones(len(t1), bool), np.zeros(len(t0), bool)]
    if len(t1) == 0 or len(t0) == 0 or not e.any():
        return None
    order = np.argsort(t, kind="stable")
    t, e, g = t[order], e[order], g[order]
    times, first = np.unique(t, return_index=True)
    n_at = len(t) - first                                   # at risk at each distinct time
    n1_at = np.cumsum(g[::-1])[::-1][first]
    d = np.add.reduceat(e.astype(float), first)
    d1 = np.add.reduceat((e & g).astype(float), first)
    n0_at = n_at - n1_at
    with np.errstate(invalid="ignore", divide="ignore"):
        exp1 = d * n1_at / n_at
        var = np.where(n_at > 1, d * (n1_at / n_at) * (n0_at / n_at) * (n_at - d) / (n_at - 1), 0.0)
    v = float(var.sum())
    if v <= 0:
        return None
    z2 = float((d1 - exp1).sum()) ** 2 / v
    return _f(stats.chi2.sf(z2, 1))


def cox_hr(t1, e1, t0, e0, alpha: float = 0.05) -> dict[str, float | None]:
    """Hazard ratio of group 1 against group 0 (Cox, Efron ties) with its Wald interval."""
    from lifelines import CoxPHFitter

    none = {"estimate": None, "ci_low": None, "ci_high": None, "p": None}
    if len(t1) == 0 or len(t0) == 0 or (np.sum(e1) == 0 and np.sum(e0) == 0):
        return none
    df = pd.DataFrame({"t": np.r_[t1, t0], "e": np.r_[e1, e0].astype(int),
                       "x": np.r_[np.ones(len(t1)), np.zeros(len(t0))]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cph = CoxPHFitter(alpha=alpha).fit(df, "t", "e")
        except Exception:                       # lifelines' ConvergenceError and friends
            return none
    s = cph.summary.loc["x"]
    lo_col = [c for c in s.index if c.startswith("exp(coef) lower")][0]
    hi_col = [c for c in s.index if c.startswith("exp(coef) upper")][0]
    return {"estimate": _f(s["exp(coef)"]), "ci_low": _f(s[lo_col]), "ci_high": _f(s[hi_col]), "p": _f(s["p"])}


def mean_difference(x1, x0, alpha: float = 0.05) -> dict[str, float | None]:
    """Difference in means (1 minus 0) with Welch's interval and test."""
    x1, x0 = np.asarray(x1, float), np.asarray(x0, float)
    if len(x1) < 2 or len(x0) < 2:
        return {"estimate": None, "ci_low": None, "ci_high": None, "p": None}
    d = x1.mean() - x0.mean()
    v1, v0 = x1.var(ddof=1) / len(x1), x0.var(ddof=1) / len(x0)
    se = math.sqrt(v1 + v0)
    if se == 0:
        return {"estimate": _f(d), "ci_low": _f(d), "ci_high": _f(d), "p": 1.0 if d == 0 else 0.0}
    df = (v1 + v0) ** 2 / (v1 ** 2 / (len(x1) - 1) + v0 ** 2 / (len(x0) - 1))
    q = stats.t.ppf(1 - alpha / 2, df)
    p = 2 * stats.t.sf(abs(d) / se, df)
    return {"estimate": _f(d), "ci_low": _f(d - q * se), "ci_high": _f(d + q * se), "p": _f(p)}


def odds_ratio(y1, y0, alpha: float = 0.05) -> dict[str, float | None]:
    """Odds ratio (1 against 0) with Woolf's logit interval and the Wald test."""
    y1, y0 = np.asarray(y1, bool), np.asarray(y0, bool)
    a, b, c, d = float(y1.sum()), float((~y1).sum()), float(y0.sum()), float((~y0).sum())
    if min(a + b, c + d) == 0:
        return {"estimate": None, "ci_low": None, "ci_high": None, "p": None}
    if min(a, b, c, d) == 0:
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    lor = math.log(a * d / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    z = stats.norm.ppf(1 - alpha / 2)
    return {"estimate": _f(math.exp(lor)), "ci_low": _f(math.exp(lor - z * se)), "ci_high": _f(math.exp(lor + z * se)),
            "p": _f(2 * stats.norm.sf(abs(lor) / se))}


# ----------------------------------------------------------------------------- the trial
def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"]


def _data(df: pd.DataFrame, name: str, kind: str):
    if kind == "time_to_event":
        return df[f"{name}.time_days"].to_numpy(float), df[f"{name}.event"].to_numpy(bool)
    if kind == "binary":
        return df[name].to_numpy(bool)
    return df[name].to_numpy(float)


def compare(g1: pd.DataFrame, g0: pd.DataFrame, name: str, kind: str, alpha: float) -> dict[str, Any]:
    if kind == "time_to_event":
        (t1, e1), (t0, e0) = _data(g1, name, kind), _data(g0, name, kind)
        out = cox_hr(t1, e1, t0, e0, alpha)
        out["logrank_p"] = logrank_p(t1, e1, t0, e0)
        return out
    if kind == "binary":
        return odds_ratio(_data(g1, name, kind), _data(g0, name, kind), alpha)
    return mean_difference(_data(g1, name, kind), _data(g0, name, kind), alpha)


def arm_summary(g: pd.DataFrame, name: str, kind: str, alpha: float, unit: float) -> dict[str, Any]:
    n = int(len(g))
    if kind == "time_to_event":
        t, e = _data(g, name, kind)
        med, lo, hi = km_median(t / unit, e, alpha)
        return {"n": n, "events": int(e.sum()), "median": med, "median_ci_low": lo, "median_ci_high": hi}
    if kind == "binary":
        y = _data(g, name, kind)
        return {"n": n, "events": int(y.sum()), "proportion": _f(y.mean()) if n else None}
    x = _data(g, name, kind)
    return {"n": n, "mean": _f(x.mean()) if n else None, "sd": _f(x.std(ddof=1)) if n > 1 else None,
            "median": _f(np.median(x)) if n else None}


def analyse(patients: pd.DataFrame, cfg: Mapping[str, Any], catalogue: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    an = cfg["analysis"]
    alpha, ref = float(an["alpha"]), an["reference_arm"]
    unit = TIME_UNITS[an["time_unit"]]
    arms = [a["name"] for a in cfg["arms"]]
    others = [a for a in arms if a != ref]
    ok = _ok(patients)
    by_arm = {a: ok[ok["arm"] == a] for a in arms}
    out: dict[str, Any] = {"reference_arm": ref, "alpha": alpha, "time_unit": an["time_unit"],
                           "primary": cfg["endpoints"][0], "endpoints": {}, "subgroups": []}
    for name in cfg["endpoints"]:
        kind = catalogue[name]["kind"]
        out["endpoints"][name] = {
            "kind": kind, "unit": catalogue[name].get("unit", ""), "effect": EFFECTS[kind],
            "arms": {a: arm_summary(by_arm[a], name, kind, alpha, unit) for a in arms},
            "comparisons": [{"arm": a, "vs": ref, **compare(by_arm[a], by_arm[ref], name, kind, alpha)} for a in others]}
    primary = cfg["endpoints"][0]
    kind = catalogue[primary]["kind"]
    for cov in an["subgroups"]:
        col = "cov." + cov
        if col not in ok.columns:
            continue
        for level in sorted(ok[col].dropna().unique(), key=str):
            sub = ok[ok[col] == level]
            for a in others:
                g1, g0 = sub[sub["arm"] == a], sub[sub["arm"] == ref]
                out["subgroups"].append({"covariate": cov, "level": level.item() if hasattr(level, "item") else level,
                                         "arm": a, "vs": ref, "n": int(len(g1) + len(g0)),
                                         **{k: v for k, v in compare(g1, g0, primary, kind, alpha).items()
                                            if k in ("estimate", "ci_low", "ci_high", "p")}})
    pw = an["power"]
    if pw["sizes"]:
        out["power"] = power_curve(by_arm, ref, others, primary, kind, pw, alpha)
    return out


# ----------------------------------------------------------------------------- power
def test_p(g1: pd.DataFrame, g0: pd.DataFrame, name: str, kind: str, alpha: float) -> float | None:
    """p value of the endpoint's test (log-rank for time to event)."""
    if kind == "time_to_event":
        (t1, e1), (t0, e0) = _data(g1, name, kind), _data(g0, name, kind)
        return logrank_fast(t1, e1, t0, e0)
    return compare(g1, g0, name, kind, alpha)["p"]


def power_curve(by_arm: Mapping[str, pd.DataFrame], ref: str, others: list[str], name: str, kind: str,
                pw: Mapping[str, Any], alpha: float) -> dict[str, Any]:
    rng = np.random.default_rng(np.random.SeedSequence(int(pw["seed"])))
    test = "log-rank" if kind == "time_to_event" else {"binary": "Wald (odds ratio)", "continuous": "Welch t"}[kind]
    comps = []
    for a in others:
        g1, g0 = by_arm[a].reset_index(drop=True), by_arm[ref].reset_index(drop=True)
        rows = []
        for n in sorted(pw["sizes"]):
            hits = 0
            if len(g1) and len(g0):
                for _ in range(int(pw["replicates"])):
                    p = test_p(g1.iloc[rng.integers(0, len(g1), n)], g0.iloc[rng.integers(0, len(g0), n)], name, kind,
                               alpha)
                    hits += int(p is not None and p < alpha)
            r = int(pw["replicates"])
            pr = hits / r
            rows.append({"n_per_arm": int(n), "power": pr, "se": math.sqrt(pr * (1 - pr) / r)})
        comps.append({"arm": a, "vs": ref, "curve": rows})
    return {"endpoint": name, "test": test, "replicates": int(pw["replicates"]), "alpha": alpha,
            "method": "resampling the simulated patients of each arm", "comparisons": comps}


def flow(population: pd.DataFrame, patients: pd.DataFrame, arms: list[str]) -> dict[str, Any]:
    """CONSORT counts: screened, excluded (by first failed criterion), eligible, randomised,
    analysed and not analysed per arm."""
    excl = population.loc[~population["eligible"], "excluded_by"].value_counts()
    ok = patients["status"] == "ok"
    return {
        "screened": int(len(population)),
        "eligible": int(population["eligible"].sum()),
        "excluded": {k: int(v) for k, v in sorted(excl.items())},
        "randomised": {a: int((population["arm"] == a).sum()) for a in arms},
        "analysed": {a: int(((patients["arm"] == a) & ok).sum()) for a in arms},
        "not_analysed": {a: int(((patients["arm"] == a) & ~ok).sum()) for a in arms},
    }
