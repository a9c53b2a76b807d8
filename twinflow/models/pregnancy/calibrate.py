"""Per-visit calibration of the uteroplacental model to a Doppler envelope and the MAP.

Data of one visit and side: the measured maximum-velocity envelope averaged over its complete
cycles, each cycle resampled to :data:`ENVELOPE_POINTS` points of normalised time from its foot
(its *shape*, not only its PI), the cycle length (-> maternal heart rate) and the MAP.

Estimated, in log space (:data:`ESTIMATED`): the maternal systemic-resistance factor
(``r_sys_factor``, set by the MAP), the placental-bed resistance ``r_p``, the distal
compliance ``c_d`` (sets the early-diastolic notch: a stiff, unremodelled bed reflects), the
wave speed (sets when the reflection returns) and the artery radius (sets the velocity
scale).  ``scipy.optimize.least_squares`` on residuals scaled by the measurement SDs
(:data:`ENVELOPE_SD_CM_S` per envelope point, :data:`MAP_SD_MMHG`).  Uncertainty: Laplace
(Gauss-Newton) covariance of the log parameters.  Identifiability as in the cardiac twin: a
vague log-normal prior (SD 1) over the *candidate* set (adds the effective length), a
parameter is flagged when its posterior relative SD exceeds 50 % or its |correlation| with
another candidate exceeds 0.95.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from twinflow.models.cardiac.circulation import Circulation
from twinflow.models.identifiability import forward_jacobian, laplace

from .uteroplacental import (MaternalCycle, UterineParams, align_to_foot, maternal_cycle, pulsatility_index,
                             radius_cm, remodelling_fraction, uterine_params, velocity_envelope)

ENVELOPE_POINTS = 64
ENVELOPE_SD_CM_S = 4.0          # assumed SD of one traced envelope point (speckle, tracing, angle)
MAP_SD_MMHG = 3.0               # assumed SD of a protocol MAP (4 readings, both arms)
UTERINE = ("r_p_mmhg_s_ml", "c_d_ml_mmhg", "wave_speed_cm_s", "radius_cm")
ESTIMATED = ("r_sys_factor",) + UTERINE
CANDIDATES = UTERINE + ("length_cm",)
PRIOR_LOG_SD = 1.0
REL_SD_LIMIT = 0.5
CORR_LIMIT = 0.95
BOUNDS = {"r_sys_factor": (0.3, 3.0), "r_p_mmhg_s_ml": (0.05, 2000.0), "c_d_ml_mmhg": (1e-6, 1.0),
          "wave_speed_cm_s": (200.0, 4000.0), "radius_cm": (0.03, 0.5), "length_cm": (10.0, 200.0)}


def mean_cycle(t: np.ndarray, v: np.ndarray, cycles: list[tuple[float, float]], n: int = ENVELOPE_POINTS) -> np.ndarray:
    """Average of the cycles ``[(onset_s, onset_s + duration_s), ...]`` of an envelope, each
    resampled to ``n`` points of normalised time (0 = the half-height point of the upstroke)."""
    out = []
    for a, b in cycles:
        tt = a + (b - a) * np.arange(n) / n
        out.append(np.interp(tt, t, v))
    return np.mean(out, axis=0)


def resample_cycle(v: np.ndarray, n: int = ENVELOPE_POINTS) -> np.ndarray:
    """A periodic model cycle started at the half-height point of its upstroke (as the measured
    cycles) and resampled to ``n`` points."""
    from .waveform import upstroke_time

    v = align_to_foot(v)
    m = v.size
    ip = int(np.argmax(v))
    x0 = upstroke_time(np.arange(m, dtype=float), v, 0, ip)
    x = x0 + np.arange(n) * m / n
    return np.interp(x, np.arange(2 * m + 1), np.concatenate([v, v, v[:1]]))


class _Model:
    """Envelope of the model for uterine parameter vectors, the maternal cycle held fixed."""

    def __init__(self, mc: MaternalCycle, names: tuple[str, ...], fixed: dict[str, float]):
        self.mc, self.names, self.fixed = mc, names, fixed
        self.n_evals = 0

    def params(self, z: np.ndarray) -> dict[str, float]:
        d = dict(self.fixed)
        d.update(dict(zip(self.names, np.exp(z))))
        return d

    def envelope(self, d: dict[str, float]) -> np.ndarray:
        self.n_evals += 1
        v = velocity_envelope(self.mc.p_ao_mmhg, self.mc.period_s, UterineParams(**d))
        return resample_cycle(v)

    def residuals(self, z: np.ndarray, env: np.ndarray) -> np.ndarray:
        return (self.envelope(self.params(z)) - env) / ENVELOPE_SD_CM_S


def _jacobian(fun, z: np.ndarray, f0: np.ndarray) -> np.ndarray:
    return forward_jacobian(fun, z, f0, h=1e-4)


@dataclass
class VisitCalibration:
    ga_weeks: float
    side: str
    hr_bpm: float
    map_mmhg: float
    estimates: dict[str, float]
    log_sd: dict[str, float]
    ci95: dict[str, tuple[float, float]]
    correlation: list[list[float]]
    identifiability: dict[str, Any]
    fitted_envelope: list[float]
    measured_envelope: list[float]
    fitted_pi: float
    measured_pi: float
    fitted_map_mmhg: float
    rms_residual_cm_s: float
    remodelling_fraction: float
    converged: bool
    n_model_evaluations: int

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        d = asdict(self)
        d["ci95"] = {k: list(v) for k, v in self.ci95.items()}
        return d


def calibrate_visit(t: np.ndarray, v: np.ndarray, cycles: list[tuple[float, float]], map_mmhg: float,
                    ga_weeks: float, side: str = "", *, with_identifiability: bool = True) -> VisitCalibration:
    """Fit the model to one visit's envelope (``t`` s, ``v`` cm/s, complete ``cycles``) and MAP.

    Two stages: (1) the maternal systemic-resistance factor from the MAP at the heart rate of the
    trace (exact, its SD from the MAP's SD through dMAP/dln f); (2) the uterine parameters
    :data:`UTERINE` from the envelope shape, started from the best point of a coarse grid over
    ``ln R_p`` and the distal time constant (the problem has local minima).
    """
    from .uteroplacental import calibrate_map

    env = mean_cycle(np.asarray(t, float), np.asarray(v, float), cycles)
    period = float(np.mean([b - a for a, b in cycles]))
    hr = 60.0 / period
    solver = Circulation()
    factor, mc = calibrate_map(ga_weeks, map_mmhg, hr_bpm=hr, solver=solver)
    h = 1e-3
    dmap = (maternal_cycle(ga_weeks, hr_bpm=hr, r_sys_factor=factor * math.exp(h), solver=solver).metrics["map_mmhg"]
            - mc.metrics["map_mmhg"]) / h
    factor_log_sd = MAP_SD_MMHG / abs(dmap)
    start = uterine_params(ga_weeks)
    fixed = {"length_cm": start.length_cm, "p_out_mmhg": start.p_out_mmhg, "profile_factor": start.profile_factor}
    model = _Model(mc, UTERINE, fixed)
    measured_pi = pulsatility_index(env)
    best = None
    for lnrp in np.linspace(math.log(0.5), math.log(400.0), 14):
        for tau in (0.005, 0.02, 0.05, 0.1, 0.2):
            for r in (0.7, 1.0, 1.4):
                z = np.log([math.exp(lnrp), tau / math.exp(lnrp), start.wave_speed_cm_s, r * radius_cm(ga_weeks)])
                res = model.residuals(z, env)
                if best is None or float(res @ res) < best[0]:
                    best = (float(res @ res), z)
    lb = np.log([BOUNDS[k][0] for k in UTERINE])
    ub = np.log([BOUNDS[k][1] for k in UTERINE])
    z0 = np.clip(best[1], lb + 1e-9, ub - 1e-9)
    fit = least_squares(lambda z: model.residuals(z, env), z0, bounds=(lb, ub), method="trf",
                        x_scale=1.0, diff_step=1e-6, xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=500)
    z = fit.x
    f0 = model.residuals(z, env)
    J = _jacobian(lambda zz: model.residuals(zz, env), z, f0)
    try:
        cov = np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        cov = np.full((z.size, z.size), np.inf)
    sd = np.sqrt(np.abs(np.diag(cov)))
    corr = cov / np.outer(sd, sd) if np.all(np.isfinite(cov)) and np.all(sd > 0) else np.full_like(cov, np.nan)
    d = model.params(z)
    e = model.envelope(d)
    ident = identifiability(model, d, env) if with_identifiability else {}
    estimates = {"r_sys_factor": float(factor), **{k: float(d[k]) for k in UTERINE}}
    log_sd = {"r_sys_factor": float(factor_log_sd), **{k: float(s_) for k, s_ in zip(UTERINE, sd)}}
    zz = {k: math.log(v_) for k, v_ in estimates.items()}
    up = UterineParams(**d)
    return VisitCalibration(
        ga_weeks=float(ga_weeks), side=side, hr_bpm=hr, map_mmhg=float(map_mmhg),
        estimates=estimates, log_sd=log_sd,
        ci95={k: (float(math.exp(zz[k] - 1.96 * log_sd[k])), float(math.exp(zz[k] + 1.96 * log_sd[k])))
              for k in estimates},
        correlation=np.round(corr, 6).tolist(), identifiability=ident,
        fitted_envelope=e.tolist(), measured_envelope=env.tolist(),
        fitted_pi=pulsatility_index(velocity_envelope(mc.p_ao_mmhg, mc.period_s, up)), measured_pi=measured_pi,
        fitted_map_mmhg=float(mc.metrics["map_mmhg"]), rms_residual_cm_s=float(np.sqrt(np.mean((e - env) ** 2))),
        remodelling_fraction=remodelling_fraction(d["r_p_mmhg_s_ml"]),
        converged=bool(fit.success), n_model_evaluations=model.n_evals)


def identifiability(model: _Model, d: dict[str, float], env: np.ndarray) -> dict[str, Any]:
    """Local identifiability of :data:`CANDIDATES` at ``d`` (vague prior, see module docstring)."""
    cand = CANDIDATES
    sub = _Model(model.mc, cand, {k: v for k, v in d.items() if k not in cand})
    z0 = np.log([d[c] for c in cand])

    def fun(z):
        return sub.residuals(z, env)

    J = _jacobian(fun, z0, fun(z0))
    ident = laplace(J, cand, prior_log_sd=PRIOR_LOG_SD, rel_sd_limit=REL_SD_LIMIT, corr_limit=CORR_LIMIT)
    sv, rel, corr, reasons = ident.singular_values, ident.rel_sd, ident.corr, ident.reasons
    return {"candidates": list(cand), "singular_values": sv.tolist(),
            "posterior_rel_sd": dict(zip(cand, rel.tolist())), "correlation": np.round(corr, 6).tolist(),
            "identifiable": ident.identifiable(), "reasons": reasons, "rule": ident.rule}
