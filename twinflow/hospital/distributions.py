"""Duration distributions: the JSON form, sampling, and right-censored fitting.

A distribution is a small dict (hours): ``{"family": "lognormal", "mean": m, "sd": s}``,
``{"family": "exponential", "mean": m}``, ``{"family": "gamma", "shape": k, "scale": th}``,
``{"family": "weibull", "shape": k, "scale": lam}``, ``{"family": "normal", "mean": m, "sd": s,
"min": a}`` (values below ``min`` are set to ``min``, as in Nelson's model) or
``{"family": "fixed", "value": v}`` or ``{"family": "empirical", "atoms": [...]}`` (K
equally likely values, sampled with linear interpolation between neighbours); any of them
may carry ``p_zero``, the probability of an exact zero (e.g. no delay at all).

Fitting (:func:`fit_duration`) is maximum likelihood with right-censored observations and
optional fractional weights (a case still waiting when the training period ended counts
as ``weight`` censored observations of each activity it may go to next):

    log L = sum_i w_i log f(x_i) + sum_j v_j log S(c_j)

over exponential, lognormal, gamma and Weibull (location 0), the family with the lowest AIC
wins.  With at least ``empirical_min`` observed values the distribution is instead the
Kaplan-Meier estimate (statsmodels ``SurvfuncRight``, with the same weights), kept as 200
quantiles: real waits are often mixtures (minutes for most patients, hours for some) that no
single family fits in both body and tail -- a lognormal chosen by AIC for such data can
have a mean ten times the observed one.  Probability the estimate leaves above the
largest observation (a censored tail) is put there.  Values at or below ``zero_tol`` go into
``p_zero``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, special, stats

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
    elif f == "empirical":
        m = float(np.mean(d["atoms"]))
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
    elif f == "empirical":
        atoms = np.asarray(d["atoms"], float)
        k = atoms.size
        lo, frac = atoms[:-1], np.diff(atoms)

        def draw():
            u = rng.random() * k - 0.5
            i = min(max(int(math.floor(u)), 0), k - 2) if k > 1 else 0
            return float(atoms[0]) if k == 1 else float(lo[i] + frac[i] * min(max(u - i, 0.0), 1.0))
    else:
        raise ValueError(f"unknown distribution family {f!r}")
    if pz <= 0.0:
        return draw
    if pz >= 1.0:
        return lambda: 0.0
    return lambda: 0.0 if rng.random() < pz else draw()


def _logpdf_logsf(family: str, p: np.ndarray, x: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log density at ``x`` and log survival at ``c`` (scipy.special closed forms: the frozen
    scipy.stats objects cost ~1 ms each to build, which dominated the fit)."""
    if family == "exponential":
        scale = math.exp(p[0])
        return -math.log(scale) - x / scale, -c / scale
    a, b = np.exp(p)
    if family == "lognormal":  # a = sigma, b = exp(mu)
        z, zc = (np.log(x) - math.log(b)) / a, (np.log(c) - math.log(b)) / a
        return -np.log(x) - math.log(a) - 0.5 * math.log(2 * math.pi) - 0.5 * z * z, special.log_ndtr(-zc)
    if family == "gamma":  # a = shape, b = scale
        lp = (a - 1) * np.log(x) - x / b - special.gammaln(a) - a * math.log(b)
        return lp, np.log(np.maximum(special.gammaincc(a, c / b), 1e-300))
    if family == "weibull":  # a = shape, b = scale
        return math.log(a) - math.log(b) + (a - 1) * (np.log(x) - math.log(b)) - (x / b) ** a, -(c / b) ** a
    raise ValueError(family)


def _nll(family, p, x, w, c, v):
    with np.errstate(all="ignore"):
        lp, ls = _logpdf_logsf(family, p, x, c)
        val = -(np.sum(w * lp) + np.sum(v * ls))
    return val if np.isfinite(val) else 1e300


def survival(d: dict | None, c) -> np.ndarray:
    """P(duration > c) under a distribution dict (0 for ``c`` beyond a fixed value)."""
    c = np.asarray(c, float)
    if not d:
        return (c < 0).astype(float)
    f = d["family"]
    if f == "fixed":
        s = (c < d["value"]).astype(float)
    elif f == "empirical":
        atoms = np.asarray(d["atoms"], float)
        s = 1.0 - np.searchsorted(atoms, c, side="right") / atoms.size
    elif f == "normal":
        s = stats.norm.sf(np.maximum(c, d.get("min", 0.0)), d["mean"], d["sd"])
    else:
        if f == "exponential":
            p = np.array([math.log(d["mean"])])
        elif f == "lognormal":
            sigma2 = math.log1p((d["sd"] / d["mean"]) ** 2)
            p = np.log([math.sqrt(sigma2), d["mean"] * math.exp(-sigma2 / 2)])
        else:
            p = np.log([d["shape"], d["scale"]])
        with np.errstate(all="ignore"):
            s = np.exp(_logpdf_logsf(f, p, np.ones(1), np.maximum(c, 1e-12))[1])
    return (1.0 - d.get("p_zero", 0.0)) * s


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
        mean = b * math.exp(a * a / 2)
        return {"family": "lognormal", "mean": float(mean), "sd": float(mean * math.sqrt(math.expm1(a * a)))}
    if family == "gamma":
        return {"family": "gamma", "shape": float(a), "scale": float(b)}
    return {"family": "weibull", "shape": float(a), "scale": float(b)}


EMPIRICAL_MIN = 100
ATOMS = 200


def kaplan_meier_atoms(x: np.ndarray, w: np.ndarray, c: np.ndarray, v: np.ndarray, k: int = ATOMS) -> list[float]:
    """``k`` equally likely values from the Kaplan-Meier estimate (weights allowed)."""
    from statsmodels.duration.survfunc import SurvfuncRight

    t = np.concatenate([x, c])
    status = np.concatenate([np.ones(x.size), np.zeros(c.size)])
    sf = SurvfuncRight(t, status, freq_weights=np.concatenate([w, v]))
    times, cdf = np.asarray(sf.surv_times, float), 1.0 - np.asarray(sf.surv_prob, float)
    p = (np.arange(k) + 0.5) / k
    idx = np.searchsorted(cdf, p - 1e-12, side="left")
    tail = float(max(x.max(), c.max() if c.size else 0.0))
    return [float(times[i]) if i < times.size else tail for i in idx]


def fit_duration(x, censored=(), *, weights=None, censored_weights=None, zero_tol: float = ZERO_TOL_H,
                 families: tuple[str, ...] = FAMILIES, empirical_min: int | None = EMPIRICAL_MIN) -> dict | None:
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
    if empirical_min is not None and xp.size >= empirical_min:
        d = {"family": "empirical", "atoms": kaplan_meier_atoms(xp, wp, c, v)}
        if p_zero > 0:
            d["p_zero"] = p_zero
        return {**d, **{k: v for k, v in info.items() if k != "p_zero"}, "method": "kaplan-meier"}
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
    return {**d, **{k: v for k, v in info.items() if k != "p_zero"}, "method": "censored ML, lowest AIC", "aic": aic}


def spec_only(d: dict | None) -> dict | None:
    """The sampling part of a fitted distribution (drops n, AIC and the like)."""
    if d is None:
        return None
    keep = {"family", "mean", "sd", "shape", "scale", "min", "value", "atoms", "p_zero"}
    return {k: v for k, v in d.items() if k in keep}
