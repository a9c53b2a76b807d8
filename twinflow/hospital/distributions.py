"""Duration distributions: the JSON form, sampling, and right-censored fitting.

A distribution is a small dict (hours): ``{"family": "lognormal", "mean": m, "sd": s}``,
``{"family": "exponential", "mean": m}``, ``{"family": "gamma", "shape": k, "scale": th}``,
``{"family": "weibull", "shape": k, "scale": lam}``, ``{"family": "normal", "mean": m, "sd": s,
"min": a}`` (values below ``min`` are set to ``min``, as in Nelson's model) or
``{"family": "fixed", "value": v}``; any of them may carry ``p_zero``, the probability of
an exact zero (e.g. no delay at all).

Fitting (:func:`fit_duration`) is maximum likelihood with right-censored observations and
optional fractional weights (a case still waiting when the training period ended counts
as ``weight`` censored observations of each activity it may go to next):

    log L = sum_i w_i log f(x_i) + sum_j v_j log S(c_j)

over exponential, lognormal, gamma and Weibull (scipy.stats, location 0), the family with
the lowest AIC wins.  Values at or below ``zero_tol`` go into ``p_zero``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, stats

ZERO_TOL_H = 1.0 / 3600.0  # one second
FAMILIES = ("exponential", "lognormal", "gamma", "weibull")


def mean_of(d: dict | None) -> float:
    """The distribution's mean (hours), including the zero mass."""
    if not d:
        return 0.0
    f = d["family"]
    if f in ("lognormal", "exponential", "normal"):
        m = d["mean"]
    elif f == "gamma":
        m = d["shape"] * d["scale"]
    elif f == "weibull":
        m = d["scale"] * math.gamma(1.0 + 1.0 / d["shape"])
    elif f == "fixed":
        m = d["value"]
    else:
        raise ValueError(f"unknown distribution family {f!r}")
    return (1.0 - d.get("p_zero", 0.0)) * m


def sampler(d: dict | None, rng: np.random.Generator):
    """A function of no arguments that draws one value (hours) from ``d`` with ``rng``."""
    if not d:
        return lambda: 0.0
    f = d["family"]
    pz = float(d.get("p_zero", 0.0))
    if f == "lognormal":
        m, s = d["mean"], d["sd"]
        sigma2 = math.log1p((s / m) ** 2)
        mu, sigma = math.log(m) - sigma2 / 2.0, math.sqrt(sigma2)
        draw = lambda: rng.lognormal(mu, sigma)  # noqa: E731
    elif f == "exponential":
        m = d["mean"]
        draw = lambda: rng.exponential(m)  # noqa: E731
    elif f == "gamma":
        k, th = d["shape"], d["scale"]
        draw = lambda: rng.gamma(k, th)  # noqa: E731
    elif f == "weibull":
        k, lam = d["shape"], d["scale"]
        draw = lambda: lam * rng.weibull(k)  # noqa: E731
    elif f == "normal":
        m, s, lo = d["mean"], d["sd"], d.get("min", 0.0)
        draw = lambda: max(lo, rng.normal(m, s))  # noqa: E731
    elif f == "fixed":
        v = float(d["value"])
        draw = lambda: v  # noqa: E731
    else:
        raise ValueError(f"unknown distribution family {f!r}")
    if pz <= 0.0:
        return draw
    if pz >= 1.0:
        return lambda: 0.0
    return lambda: 0.0 if rng.random() < pz else draw()


def _scipy(family: str, p: np.ndarray):
    a, b = np.exp(p)
    if family == "lognormal":
        return stats.lognorm(a, scale=b)
    if family == "gamma":
        return stats.gamma(a, scale=b)
    if family == "weibull":
        return stats.weibull_min(a, scale=b)
    raise ValueError(family)


def _nll(family, p, x, w, c, v):
    if family == "exponential":
        scale = math.exp(p[0])
        return -(np.sum(w * (-np.log(scale) - x / scale)) + np.sum(v * (-c / scale)))
    d = _scipy(family, p)
    with np.errstate(all="ignore"):
        val = -(np.sum(w * d.logpdf(x)) + np.sum(v * d.logsf(c)))
    return val if np.isfinite(val) else 1e300


def _start(family: str, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    lx = np.log(x)
    m = np.average(x, weights=w)
    if family == "exponential":
        return np.array([math.log(m)])
    var = np.average((x - m) ** 2, weights=w) if len(x) > 1 else m * m
    cv2 = max(var / (m * m), 1e-4)
    if family == "lognormal":
        s = max(np.sqrt(np.average((lx - np.average(lx, weights=w)) ** 2, weights=w)), 1e-3)
        return np.array([math.log(s), np.average(lx, weights=w)])
    if family == "gamma":
        k = 1.0 / cv2
        return np.array([math.log(k), math.log(m / k)])
    k = min(max(cv2 ** -0.54, 0.1), 50.0)  # Weibull shape from the coefficient of variation
    return np.array([math.log(k), math.log(m / math.gamma(1 + 1 / k))])


def _as_dict(family: str, p: np.ndarray) -> dict:
    if family == "exponential":
        return {"family": "exponential", "mean": math.exp(p[0])}
    a, b = np.exp(p)
    if family == "lognormal":
        d = stats.lognorm(a, scale=b)
        return {"family": "lognormal", "mean": float(d.mean()), "sd": float(d.std())}
    if family == "gamma":
        return {"family": "gamma", "shape": float(a), "scale": float(b)}
    return {"family": "weibull", "shape": float(a), "scale": float(b)}


def fit_duration(x, censored=(), *, weights=None, censored_weights=None, zero_tol: float = ZERO_TOL_H,
                 families: tuple[str, ...] = FAMILIES) -> dict | None:
    """Fit durations ``x`` (hours) with right-censored lower bounds ``censored``.

    Returns the chosen distribution dict with ``n`` (observed), ``n_censored`` (sum of
    censored weights), ``aic`` per family and ``p_zero``; ``None`` when nothing was observed.
    """
    x = np.asarray(x, float)
    c = np.asarray(censored, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    v = np.ones_like(c) if censored_weights is None else np.asarray(censored_weights, float)
    keep_c = c > zero_tol
    c, v = c[keep_c], v[keep_c]
    if x.size == 0 or w.sum() <= 0:
        return None
    zero = x <= zero_tol
    p_zero = float(w[zero].sum() / (w.sum() + v.sum()))
    xp, wp = x[~zero], w[~zero]
    info = {"n": int(x.size), "n_censored": float(round(v.sum(), 6)), "p_zero": p_zero}
    if xp.size < 2 or np.ptp(xp) <= 0:
        if xp.size == 0:
            return {"family": "fixed", "value": 0.0, **info, "p_zero": 1.0, "aic": {}}
        return {"family": "fixed", "value": float(np.average(xp, weights=wp)), **info, "aic": {}}
    aic, best = {}, None
    for fam in families:
        p0 = _start(fam, xp, wp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = optimize.minimize(lambda p: _nll(fam, p, xp, wp, c, v), p0, method="Nelder-Mead",
                                    options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000})
        if not np.isfinite(res.fun) or res.fun >= 1e299:
            continue
        aic[fam] = 2 * len(p0) + 2 * float(res.fun)
        if best is None or aic[fam] < aic[best[0]]:
            best = (fam, res.x)
    if best is None:
        return {"family": "fixed", "value": float(np.average(xp, weights=wp)), **info, "aic": {}}
    d = _as_dict(best[0], best[1])
    if p_zero > 0:
        d["p_zero"] = p_zero
    return {**d, **{k: v for k, v in info.items() if k != "p_zero"}, "aic": aic}


def spec_only(d: dict | None) -> dict | None:
    """The sampling part of a fitted distribution (drops n, AIC and the like)."""
    if d is None:
        return None
    keep = {"family", "mean", "sd", "shape", "scale", "min", "value", "p_zero"}
    return {k: v for k, v in d.items() if k in keep}
