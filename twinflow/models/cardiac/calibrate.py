"""Calibrate the circulation to a patient's EDV, ESV and (where measured) SBP, DBP and HR.

* Heart rate is an input, not a fitted quantity: the measured HR (LOINC 8867-4) when the
  labs have it, else the population default (recorded as an assumption).
* Estimated parameters, in log space, by ``scipy.optimize.least_squares`` on residuals
  scaled by the measurement SDs of :data:`MEASUREMENT_SD`:

  ===========================  ===============================================================
  data                          estimated
  ===========================  ===============================================================
  EDV, ESV, SBP, DBP            ``lv_emax`` (contractility), ``v_stressed`` (preload),
                                ``r_sys`` (systemic resistance), ``c_sa`` (arterial compliance)
  EDV, ESV only                 ``lv_emax``, ``v_stressed``; ``r_sys``, ``c_sa`` fixed at
                                population defaults (assumptions)
  ===========================  ===============================================================

  Every parameter not estimated keeps its population default and is listed in
  ``assumptions``.
* Uncertainty: Gauss-Newton (Laplace) covariance ``(J^T J)^-1`` of the log parameters, ``J``
  the Jacobian of the SD-scaled residuals at the optimum (forward differences).  ``rel_sd``
  is the SD of the log parameter (~ the relative SD).
* Identifiability: the same sensitivity analysis over the wider *candidate* set
  :data:`CANDIDATES` (adds diastolic stiffness ``lv_emin`` and the dead volume ``lv_v0``),
  with a vague log-normal prior (SD 1 in log space, a factor e) so that the covariance exists
  when the data are fewer than the parameters.  A parameter is flagged *not identifiable*
  when its posterior relative SD exceeds 50 % or its |correlation| with another candidate
  exceeds 0.95; the singular values of ``J`` are reported as well.  With volumes only, the
  pressures' parameters (``r_sys``, ``c_sa``) are not identifiable and the preload and
  diastolic stiffness are confounded (both set EDV).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy.optimize import least_squares

from twinflow.errors import InputError
from twinflow.models.identifiability import forward_jacobian, laplace

from .circulation import DEFAULT_PARAMS, Circulation, CirculationParams

#: Measurement SDs used to scale residuals and for the uncertainty (documented assumptions:
#: CMR/echo volume repeatability ~5 ml, cuff pressure ~5 mmHg).
MEASUREMENT_SD = {"edv_ml": 5.0, "esv_ml": 5.0, "sbp_mmhg": 5.0, "dbp_mmhg": 5.0}

#: Candidate parameters for the identifiability analysis.
CANDIDATES = ("lv_emax_mmhg_ml", "lv_emin_mmhg_ml", "lv_v0_ml", "v_stressed_ml",
              "r_sys_mmhg_s_ml", "c_sa_ml_mmhg")
ESTIMATED_WITH_PRESSURES = ("lv_emax_mmhg_ml", "v_stressed_ml", "r_sys_mmhg_s_ml", "c_sa_ml_mmhg")
ESTIMATED_VOLUMES_ONLY = ("lv_emax_mmhg_ml", "v_stressed_ml")
PRIOR_LOG_SD = 1.0
REL_SD_LIMIT = 0.5
CORR_LIMIT = 0.95
BOUNDS_FACTOR = 8.0  # each estimate is kept within default / 8 .. default * 8

#: LOINC codes read from the labs (analyte keys of twinflow.io.labs in brackets).
LOINC = {"sbp_mmhg": "8480-6", "dbp_mmhg": "8462-4", "hr_bpm": "8867-4"}
_ANALYTE = {"sbp_mmhg": "systolic_bp", "dbp_mmhg": "diastolic_bp", "hr_bpm": "heart_rate"}


@dataclass
class CalibrationResult:
    params: CirculationParams
    estimated: tuple[str, ...]
    estimates: dict[str, float]
    rel_sd: dict[str, float]
    ci95: dict[str, tuple[float, float]]
    correlation: list[list[float]]
    targets: dict[str, float]
    fitted: dict[str, float]
    residuals_sd_units: dict[str, float]
    assumptions: list[str]
    identifiability: dict[str, Any]
    n_model_evaluations: int
    n_cycles: int
    converged: bool
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params.to_dict(), "estimated": list(self.estimated),
            "estimates": self.estimates, "rel_sd": self.rel_sd,
            "ci95": {k: list(v) for k, v in self.ci95.items()},
            "correlation": self.correlation, "targets": self.targets, "fitted": self.fitted,
            "residuals_sd_units": self.residuals_sd_units, "assumptions": self.assumptions,
            "identifiability": self.identifiability,
            "n_model_evaluations": self.n_model_evaluations, "n_cycles": self.n_cycles,
            "converged": self.converged, "metrics": self.metrics,
            "measurement_sd": MEASUREMENT_SD,
        }


def _outputs(solver: Circulation, p: CirculationParams, keys: tuple[str, ...]) -> np.ndarray:
    m = solver.steady_state(p).metrics
    return np.array([m[k] for k in keys])


def _jacobian(fun: Callable[[np.ndarray], np.ndarray], z: np.ndarray, f0: np.ndarray) -> np.ndarray:
    return forward_jacobian(fun, z, f0, h=1e-3)


def _corr(cov: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.diag(cov))
    return cov / np.outer(d, d)


def identifiability(solver: Circulation, p: CirculationParams, keys: tuple[str, ...],
                    candidates: tuple[str, ...] = CANDIDATES) -> dict[str, Any]:
    """Local identifiability of ``candidates`` from the outputs ``keys`` at ``p``."""
    sd = np.array([MEASUREMENT_SD[k] for k in keys])
    z0 = np.log([getattr(p, c) for c in candidates])

    def fun(z):
        return _outputs(solver, p.with_(**dict(zip(candidates, np.exp(z)))), keys) / sd

    f0 = fun(z0)
    J = _jacobian(fun, z0, f0)
    ident = laplace(J, candidates, prior_log_sd=PRIOR_LOG_SD, rel_sd_limit=REL_SD_LIMIT, corr_limit=CORR_LIMIT)
    sv, rel, corr, flags = ident.singular_values, ident.rel_sd, ident.corr, ident.reasons
    return {
        "data": list(keys), "candidates": list(candidates),
        "sensitivity_sd_units_per_log": J.tolist(),
        "singular_values": sv.tolist(),
        "rank_1e-3": int(np.sum(sv > 1e-3 * sv[0])) if sv.size else 0,
        "prior_log_sd": PRIOR_LOG_SD,
        "posterior_rel_sd": dict(zip(candidates, rel.tolist())),
        "correlation": corr.tolist(),
        "identifiable": ident.identifiable(),
        "reasons": flags,
        "rule": ident.rule,
    }


def calibrate(edv_ml: float, esv_ml: float, sbp_mmhg: float | None = None,
              dbp_mmhg: float | None = None, hr_bpm: float | None = None, *,
              base: CirculationParams = DEFAULT_PARAMS, solver: Circulation | None = None,
              patient: str | None = None, with_identifiability: bool = True) -> CalibrationResult:
    """Fit the circulation to the patient's measurements (see the module docstring)."""
    def bad(msg):
        return InputError(msg, patient=patient)

    if not (np.isfinite(edv_ml) and np.isfinite(esv_ml) and 0 < esv_ml < edv_ml):
        raise bad(f"cardiac calibration needs 0 < ESV < EDV, got EDV={edv_ml} ml, ESV={esv_ml} ml")
    if (sbp_mmhg is None) != (dbp_mmhg is None):
        raise bad("cardiac calibration needs both systolic and diastolic pressure, or neither")
    if sbp_mmhg is not None and not (0 < dbp_mmhg < sbp_mmhg):
        raise bad(f"cardiac calibration needs 0 < DBP < SBP, got {sbp_mmhg}/{dbp_mmhg} mmHg")
    assumptions: list[str] = []
    if hr_bpm is None or not np.isfinite(hr_bpm):
        hr_bpm = base.hr_bpm
        assumptions.append(f"heart rate not measured (LOINC {LOINC['hr_bpm']}): population default "
                           f"{hr_bpm:g}/min")
    p0 = base.with_(hr_bpm=float(hr_bpm))
    if sbp_mmhg is None:
        keys = ("edv_ml", "esv_ml")
        est = ESTIMATED_VOLUMES_ONLY
        y = np.array([edv_ml, esv_ml], float)
        assumptions.append(f"blood pressure not measured (LOINC {LOINC['sbp_mmhg']}/{LOINC['dbp_mmhg']}): "
                           "systemic resistance and arterial compliance fixed at population defaults")
    else:
        keys = ("edv_ml", "esv_ml", "sbp_mmhg", "dbp_mmhg")
        est = ESTIMATED_WITH_PRESSURES
        y = np.array([edv_ml, esv_ml, sbp_mmhg, dbp_mmhg], float)
    for k, v in p0.to_dict().items():
        if k not in est and k != "hr_bpm":
            assumptions.append(f"{k} = {v:g} (population default, not estimated)")
    sd = np.array([MEASUREMENT_SD[k] for k in keys])
    solver = solver or Circulation()
    n0, c0 = solver.n_solves, solver.n_cycles_total
    zdef = np.log([getattr(p0, e) for e in est])

    def fun(z):
        return (_outputs(solver, p0.with_(**dict(zip(est, np.exp(z)))), keys) - y) / sd

    lb, ub = zdef - np.log(BOUNDS_FACTOR), zdef + np.log(BOUNDS_FACTOR)
    fit = least_squares(fun, zdef, jac="2-point", diff_step=1e-4, bounds=(lb, ub),
                        x_scale=1.0, xtol=1e-10, ftol=1e-10, gtol=1e-10, max_nfev=200)
    z = fit.x
    p = p0.with_(**dict(zip(est, np.exp(z))))
    f0 = fun(z)
    J = _jacobian(fun, z, f0)
    try:
        cov = np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        cov = np.full((len(est), len(est)), np.inf)
    rel = np.sqrt(np.abs(np.diag(cov)))
    corr = _corr(cov) if np.all(np.isfinite(cov)) else np.full_like(cov, np.nan)
    res = solver.steady_state(p)
    fitted = {k: float(res.metrics[k]) for k in keys}
    ident = identifiability(solver, p, keys) if with_identifiability else {}
    for c, ok in ident.get("identifiable", {}).items():
        if c in est and not ok:
            assumptions.append(f"{c} is estimated but poorly identified: {'; '.join(ident['reasons'][c])}")
    return CalibrationResult(
        params=p, estimated=est,
        estimates={e: float(np.exp(zi)) for e, zi in zip(est, z)},
        rel_sd={e: float(s) for e, s in zip(est, rel)},
        ci95={e: (float(np.exp(zi - 1.96 * s)), float(np.exp(zi + 1.96 * s))) for e, zi, s in zip(est, z, rel)},
        correlation=corr.tolist(), targets=dict(zip(keys, y.tolist())), fitted=fitted,
        residuals_sd_units=dict(zip(keys, f0.tolist())), assumptions=assumptions,
        identifiability=ident, n_model_evaluations=solver.n_solves - n0,
        n_cycles=solver.n_cycles_total - c0,
        converged=bool(fit.success and np.max(np.abs(f0)) < 1e-2), metrics=res.metrics,
    )


def targets_from_labs(labs: Any, *, patient: str | None = None) -> dict[str, float | None]:
    """Latest SBP, DBP and HR from an ingested labs table (``twinflow.io.labs`` columns).

    Returns ``{"sbp_mmhg", "dbp_mmhg", "hr_bpm"}`` with ``None`` where the labs have no value.
    Rows are matched by ``analyte`` (or by ``loinc`` when there is no analyte column); the
    latest ``date`` wins (ties: the last row).
    """
    out: dict[str, float | None] = {k: None for k in LOINC}
    if labs is None or len(labs) == 0:
        return out
    df = labs
    for k in LOINC:
        if "analyte" in df.columns:
            sel = df[df["analyte"] == _ANALYTE[k]]
        else:
            sel = df[df["loinc"].astype(str) == LOINC[k]]
        if "flag" in sel.columns:
            sel = sel[~sel["flag"].astype(str).str.contains("implausible", na=False)]
        if len(sel):
            if "date" in sel.columns:
                sel = sel.sort_values("date", kind="mergesort")
            out[k] = float(sel["value"].iloc[-1])
    return out


def synthetic_patient(params: CirculationParams | dict | None = None, seed: int = 0, *,
                      noise: bool = True, solver: Circulation | None = None) -> dict[str, Any]:
    """A synthetic patient generated by the model from known ``params``.

    Returns ``edv_ml``, ``esv_ml``, ``sbp``, ``dbp`` (mmHg) and ``hr`` (/min) as a clinic
    would measure them -- with Gaussian noise of :data:`MEASUREMENT_SD` drawn from ``seed``
    unless ``noise=False`` (HR is exact: it is a model input) -- plus ``truth`` (noise-free
    metrics), ``params`` (dict), ``period_s`` and ``lv_volume_curve(t)``: the model's LV volume
    (ml) at times ``t`` seconds (periodic; ``t = 0`` is the onset of ventricular activation,
    i.e. the R wave / end diastole), for building cine images that follow the model.
    """
    if params is None:
        params = DEFAULT_PARAMS
    elif isinstance(params, dict):
        params = DEFAULT_PARAMS.with_(**params)
    res = (solver or Circulation()).steady_state(params)
    m = res.metrics
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(4) if noise else np.zeros(4)
    t_grid = res.t_s.copy()
    v_grid = res.lv_volume_ml.copy()
    period = float(t_grid[-1])

    def lv_volume_curve(t):
        return np.interp(np.mod(np.asarray(t, float), period), t_grid, v_grid)

    return {
        "edv_ml": m["edv_ml"] + MEASUREMENT_SD["edv_ml"] * e[0],
        "esv_ml": m["esv_ml"] + MEASUREMENT_SD["esv_ml"] * e[1],
        "sbp": m["sbp_mmhg"] + MEASUREMENT_SD["sbp_mmhg"] * e[2],
        "dbp": m["dbp_mmhg"] + MEASUREMENT_SD["dbp_mmhg"] * e[3],
        "hr": params.hr_bpm,
        "truth": {k: m[k] for k in ("edv_ml", "esv_ml", "sbp_mmhg", "dbp_mmhg", "ef_pct", "co_l_min")},
        "params": params.to_dict(),
        "period_s": period,
        "lv_volume_curve": lv_volume_curve,
    }
