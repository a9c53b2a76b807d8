"""Per-patient calibration of the tumour model: Levenberg-Marquardt with forward sensitivities.

Unknowns ``theta = log(D_w, k, alpha, kappa)`` (log space: positivity, and relative steps).
``gm_ratio`` and ``alpha/beta`` are fixed (0.1 and 10 Gy); the initial condition is the
density measured at the first calibration visit (:func:`density.initial_density`).

Objective (Huber's robust loss, in units of ``u``)::

    J(theta) = sum_visits sum_voxels rho_c(r),   rho_c(r) = r^2/2 (|r| <= c), c|r| - c^2/2 (beyond)
    r = u_model - u_obs                      where a point value is measured (ADC)
    r = u_model - clip(u_model, lo, hi)      elsewhere (interval / censored observation:
                                             outside the visible tumour lo = 0, hi = 0.16)
    c = 1.345 sigma_MAD                      sigma_MAD = 1.4826 median|r - median r| of the point
                                             residuals, re-estimated after every accepted step

Why robust: automatic tumour masks differ from the truth by a one-voxel boundary shell.  Those
voxels hold a tissue/CSF partial-volume ADC that the tumour mapping turns into u ~ 0.4-0.9 where
the true density is < 0.16: residuals of 10-70 noise sd that, under least squares, a few dozen
voxels suffice to pull D_w off by ~30 % (demo ONC001).  Huber bounds their influence and keeps
95 % efficiency under Gaussian noise.  It is solved by IRLS inside Levenberg-Marquardt: weights
``w = min(1, c/|r|)``, normal matrix ``J^T W J``, gradient ``J^T psi(r)`` (``psi = clip(r, -c,
c)``).  ``robust=False`` gives plain least squares.  The same error at the first visit (the
initial condition) is handled by :func:`density.cap_boundary_shell`.

Each evaluation runs one forward solve together with the tangent-linear model
(:meth:`growth.ReactionDiffusion.simulate_sensitivities`), which gives the exact Jacobian
``dr/dtheta`` of the discrete model (one tangent trajectory per parameter: cost grows with
the number of parameters, not with the number of voxels).  Levenberg-Marquardt with
Marquardt's diagonal scaling, steps capped at 1 in log space, accept/reject with the cost;
it stops when the largest log-step falls below ``xtol`` (default 1e-6: 1 ppm relative), or when
the cost falls by less than a fraction ``ftol`` (1e-4: the noise floor) with a step below 1e-3 in
log space or below 0.2 posterior sd (Laplace metric: a creep along a non-identifiable ridge).

Domain crop: the solve runs on the bounding box of every tumour mask of the calibration
visits plus ``margin_mm`` (default 25 mm) of tissue on every side, with no flux through the
box faces.  That is exact where the model density at the box faces is 0 and harmless where
it is tiny.  After the fit the largest density on a box face that is not the grid edge is
checked; above ``boundary_tol`` (1e-3) the margin is doubled and the fit resumed.

Uncertainty (Laplace / Gauss-Newton approximation, flat prior in log space, for the Huber
M-estimator, Huber 1981 sec. 7.6): ``sigma^2 = sum psi(r)^2 / ((n - p) m^2)`` and
``Cov(theta) = sigma^2 m H^-1`` with ``H = sum psi'(r) S S^T`` (the Gauss-Newton Hessian of the
robust cost) and ``m`` the fraction of residuals within ``c``; without down-weighted residuals
this is ``sigma^2 = sum r^2 / (n - p)``, ``Cov = sigma^2 (J^T J)^-1``.  Reported per parameter: the estimate, the standard
deviation of ``log p`` (approximately the relative sd), a 95 % interval, and the correlation
matrix.  A parameter is flagged *not identifiable* when its relative sd exceeds 50 % or its
correlation with another estimated parameter exceeds 0.95 in absolute value.  Parameters
that the calibration window carries no information on (no radiotherapy fraction / no drug
exposure before the last calibration visit) are not estimated: they keep their start value
and are flagged as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from twinflow.models.oncology.density import Observation, initial_density
from twinflow.models.oncology.growth import GrowthParams, ReactionDiffusion, Schedule

PARAM_NAMES = ("d_w", "k", "alpha", "kappa")
PARAM_FIELDS = {"d_w": "d_w_mm2_day", "k": "k_per_day", "alpha": "alpha_per_gy", "kappa": "kappa_l_per_mg_h"}
PARAM_UNITS = {"d_w": "mm2/day", "k": "1/day", "alpha": "1/Gy", "kappa": "L/(mg h)"}
#: start values (mid-range of the glioma literature; see docs/oncology-model.md)
DEFAULT_START = GrowthParams(d_w_mm2_day=0.1, k_per_day=0.03, alpha_per_gy=0.03, kappa_l_per_mg_h=0.001)
REL_SD_LIMIT = 0.5
CORR_LIMIT = 0.95
#: Huber threshold in units of the robust noise sd (95 % efficiency under Gaussian noise)
HUBER_K = 1.345


def default_holdout(n_visits: int) -> int:
    """Config key ``holdout_visits`` default: 1 when a patient has 3 or more visits, else 0."""
    return 1 if n_visits >= 3 else 0


def split_visits(n_visits: int, holdout_visits: int | None = None) -> tuple[list[int], list[int]]:
    """Indices of calibration and held-out visits (the last ``holdout_visits`` are held out;
    at least two visits are always kept for calibration)."""
    h = default_holdout(n_visits) if holdout_visits is None else int(holdout_visits)
    if h < 0:
        raise ValueError("holdout_visits must be >= 0")
    if n_visits - h < 2:
        raise ValueError(f"{n_visits} visits with holdout_visits={h} leave fewer than 2 for calibration")
    return list(range(n_visits - h)), list(range(n_visits - h, n_visits))


def crop_box(masks: list[np.ndarray], spacing_mm, margin_mm: float) -> tuple[slice, ...]:
    union = np.zeros(masks[0].shape, bool)
    for m in masks:
        union |= np.asarray(m, bool)
    if not union.any():
        return tuple(slice(0, n) for n in union.shape)
    idx = np.argwhere(union)
    lo, hi = idx.min(0), idx.max(0) + 1
    out = []
    for ax in range(3):
        pad = int(np.ceil(margin_mm / float(spacing_mm[ax])))
        out.append(slice(max(0, int(lo[ax]) - pad), min(union.shape[ax], int(hi[ax]) + pad)))
    return tuple(out)


def _with(params: GrowthParams, names, theta) -> GrowthParams:
    return replace(params, **{PARAM_FIELDS[n]: float(np.exp(t)) for n, t in zip(names, theta)})


def _get(params: GrowthParams, name: str) -> float:
    return float(getattr(params, PARAM_FIELDS[name]))


def informative_parameters(schedule: Schedule, t_end_day: float, dt_day: float = 0.5) -> tuple[list[str], dict[str, str]]:
    """Parameters the window [0, t_end] can inform, and a reason for each one it cannot."""
    fit, why = ["d_w", "k"], {}
    rt = np.asarray(schedule.rt_days, float)
    if np.any((rt >= 0) & (rt < t_end_day)):
        fit.append("alpha")
    else:
        why["alpha"] = "no radiotherapy fraction before the last calibration visit: not estimated"
    auc = 0.0
    if schedule.drug_exposure is not None:
        auc = float(schedule.drug_exposure(0.0, t_end_day))
    if auc > 0:
        fit.append("kappa")
    else:
        why["kappa"] = "no drug exposure before the last calibration visit: not estimated"
    return fit, why


@dataclass
class CalibrationResult:
    params: GrowthParams
    estimated: tuple[str, ...]
    not_estimated: dict[str, str]
    log_sd: dict[str, float | None]
    ci95: dict[str, tuple[float, float]]
    correlation: list[list[float]]
    identifiable: dict[str, bool]
    flags: list[str]
    sigma_u: float
    n_point: int
    n_residuals: int
    cost: float
    n_iterations: int
    converged: bool
    n_forward_solves: int
    n_tangent_solves: int
    calibration_days: list[float]
    crop_box: list[list[int]]
    boundary_max_u: float
    rmse_per_visit: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    robust: bool = True
    huber_c: float = float("inf")
    n_downweighted: int = 0

    def to_dict(self) -> dict[str, Any]:
        p = {}
        for n in PARAM_NAMES:
            p[n] = {"value": _get(self.params, n), "unit": PARAM_UNITS[n], "estimated": n in self.estimated,
                    "log_sd": self.log_sd.get(n), "ci95": list(self.ci95[n]) if n in self.ci95 else None,
                    "identifiable": self.identifiable.get(n, False),
                    "note": self.not_estimated.get(n, "")}
        return {
            "parameters": p,
            "fixed": {"gm_ratio": self.params.gm_ratio, "ab_ratio_gy": self.params.ab_ratio_gy},
            "correlation": {"names": list(self.estimated), "matrix": self.correlation},
            "flags": self.flags, "sigma_u": self.sigma_u, "n_point_observations": self.n_point,
            "n_residuals": self.n_residuals, "cost": self.cost, "n_iterations": self.n_iterations,
            "converged": self.converged, "n_forward_solves": self.n_forward_solves,
            "n_tangent_solves": self.n_tangent_solves, "calibration_days": self.calibration_days,
            "crop_box": self.crop_box, "boundary_max_u": self.boundary_max_u,
            "rmse_per_visit": self.rmse_per_visit, "history": self.history,
            "loss": {"kind": "huber" if self.robust else "least_squares",
                     "threshold_u": self.huber_c if np.isfinite(self.huber_c) else None,
                     "n_downweighted": self.n_downweighted},
        }


def robust_scale(r: np.ndarray) -> float:
    """Normalised median absolute deviation of the residuals ``r`` (a consistent estimate of the
    noise sd for Gaussian noise that a minority of gross outliers does not move)."""
    r = np.asarray(r, np.float64)
    if r.size == 0:
        return float("inf")
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def informed_directions(H: np.ndarray, n_residuals: int, n_params: int, sigma2: float,
                        rel_tol: float = 1e-10) -> tuple[np.ndarray, list[str]]:
    """Which parameters the data inform, from the Gauss-Newton Hessian ``H`` of the fit.

    A parameter is *not* informed (and must never be reported as identified, whatever a
    pseudo-inverse would say) when its sensitivity is zero (``H_ii`` below ``rel_tol`` of the
    largest, or exactly 0: e.g. no tumour to move), when it lies in a null direction of ``H``
    (eigenvalue of the correlation-scaled ``H`` below ``rel_tol``, component above 0.1), when
    there are no more residuals than parameters, or when the residuals are exactly zero (no noise
    level, so no uncertainty can be computed).  Returns the boolean mask and a reason per entry."""
    P = n_params
    d = np.diag(H).astype(np.float64) if P else np.zeros(0)
    ok = np.ones(P, bool)
    why = [""] * P
    dmax = float(d.max()) if P else 0.0
    for i in range(P):
        if not (d[i] > 0) or d[i] <= rel_tol * dmax:
            ok[i] = False
            why[i] = "the data carry no sensitivity to it"
    if ok.sum() >= 2:
        idx = np.flatnonzero(ok)
        s = 1.0 / np.sqrt(d[idx])
        w, v = np.linalg.eigh(H[np.ix_(idx, idx)] * np.outer(s, s))
        for k in np.flatnonzero(w <= rel_tol * max(float(w.max()), 1e-300)):
            for j in np.flatnonzero(np.abs(v[:, k]) > 0.1):
                ok[idx[j]] = False
                why[idx[j]] = "only a combination with other parameters is informed (singular Hessian)"
    if n_residuals <= P:
        ok[:] = False
        why = [f"{n_residuals} residuals for {P} parameters"] * P
    elif not sigma2 > 0:
        ok[:] = False
        why = ["the residuals are exactly zero: no noise level, no uncertainty"] * P
    return ok, why


class _Problem:
    def __init__(self, rd: ReactionDiffusion, u0, obs: list[Observation], schedule, base: GrowthParams,
                 names, dt_day, rt_mask, robust: bool = True):
        self.rd, self.u0, self.obs, self.schedule = rd, u0, obs, schedule
        self.base, self.names, self.dt, self.rt_mask = base, tuple(names), dt_day, rt_mask
        self.robust = robust
        self.days = [o.day for o in obs]
        self.t_end = max(self.days)
        sel = rd.mask.copy()
        for o in obs:
            sel |= o.tumour
        self.idx = np.flatnonzero(sel)
        self.val = [o.value.ravel()[self.idx].astype(np.float64) for o in obs]
        self.lo = [o.lower.ravel()[self.idx].astype(np.float64) for o in obs]
        self.hi = [o.upper.ravel()[self.idx].astype(np.float64) for o in obs]
        self.point = [np.isfinite(v) for v in self.val]
        self.n_point = int(sum(int(pt.sum()) for pt in self.point))

    def solve(self, theta):
        """Forward + tangent solve at ``theta``: the active residuals and their Jacobian rows."""
        p = _with(self.base, self.names, theta)
        sims = self.rd.simulate_sensitivities(self.u0, p, self.t_end, self.dt, self.schedule,
                                              save_days=self.days, rt_mask=self.rt_mask, wrt=self.names)
        P = len(self.names)
        rs, Ss, pts, rmse, states = [], [], [], {}, {}
        for o, val, lo, hi, pt in zip(self.obs, self.val, self.lo, self.hi, self.point):
            u_full, S_full = sims[o.day]
            states[o.day] = u_full
            u = u_full.ravel()[self.idx].astype(np.float64)
            r = np.where(pt, u - np.where(pt, val, 0.0), u - np.clip(u, lo, hi))
            active = pt | (r != 0)
            rs.append(r[active])
            Ss.append(S_full.reshape(P, -1)[:, self.idx[active]].astype(np.float64))
            pts.append(pt[active])
            rmse[f"{o.day:g}"] = float(np.sqrt(np.mean(r[pt] ** 2))) if pt.any() else float(np.sqrt(np.mean(r ** 2)))
        return {"r": np.concatenate(rs), "S": np.concatenate(Ss, axis=1), "point": np.concatenate(pts),
                "rmse": rmse, "states": states}

    def scale(self, sol) -> float:
        """Huber threshold ``c = 1.345 * sigma_MAD`` of the point residuals (inf: plain least squares,
        when the fit is not robust, there are no point values, or the residuals are not yet centred:
        a median residual beyond ``c`` means the model is still far from the data -- e.g. a start
        that predicts no visible tumour where there is one -- and the MAD is then the spread of the
        data, not the noise, so every residual would be down-weighted and the fit could not move)."""
        if not self.robust or int(sol["point"].sum()) < 10:
            return float("inf")
        rp = sol["r"][sol["point"]]
        s = robust_scale(rp)
        if not s > 0:   # exact fit: fall back to the rms (0 only for a perfect fit)
            s = float(np.sqrt(np.mean(sol["r"] ** 2)))
        c = HUBER_K * max(s, 1e-12)
        return float("inf") if abs(float(np.median(rp))) > c else c

    @staticmethod
    def accumulate(sol, c: float):
        """Huber cost, IRLS normal matrix ``J^T W J`` and gradient ``J^T psi(r)`` at threshold ``c``."""
        r, S = sol["r"], sol["S"]
        a = np.abs(r)
        inl = a <= c
        out = a[~inl]                                   # empty for c = inf (least squares)
        cost = 0.5 * float(r[inl] @ r[inl]) + float(np.sum(c * out - 0.5 * c * c))
        w = np.ones_like(r)
        w[~inl] = c / out
        jtj = (S * w) @ S.T
        jtr = S @ (w * r)                               # = J^T psi(r): the exact gradient
        return cost, jtj, jtr


def _lm(prob: _Problem, theta0, max_iter: int, xtol: float, ftol: float, history: list, sd_tol: float = 0.2):
    """Levenberg-Marquardt on the Huber cost; the threshold (and so the IRLS weights) is
    re-estimated from the residuals after every accepted step and held fixed while the step is
    searched, so accept/reject compares costs of one objective.  Stops when the largest log-step
    is below ``xtol``, or when the cost falls by less than ``ftol`` (relative) and the step is
    below 1e-3 in log space or below ``sd_tol`` posterior sd in the Laplace metric (a step along
    a ridge of non-identifiable combinations: it moves nothing the data inform)."""
    theta = np.asarray(theta0, float)
    sol = prob.solve(theta)
    c = prob.scale(sol)
    cost, jtj, jtr = prob.accumulate(sol, c)
    lam = 1e-3
    converged = False
    it = 0
    history.append({"iteration": 0, "cost": cost, "huber_c": c if np.isfinite(c) else None,
                    "params": {n: float(np.exp(t)) for n, t in zip(prob.names, theta)}})
    while it < max_iter:
        it += 1
        d = np.diag(jtj).copy()
        d[d <= 0] = 1e-30
        accepted = False
        for _ in range(12):
            A = jtj + lam * np.diag(d)
            try:
                step = -np.linalg.solve(A, jtr)
            except np.linalg.LinAlgError:
                step = -np.linalg.lstsq(A, jtr, rcond=None)[0]
            m = float(np.max(np.abs(step)))
            if m > 1.0:
                step *= 1.0 / m
            trial = theta + step
            sol2 = prob.solve(trial)
            c2, jtj2, jtr2 = prob.accumulate(sol2, c)
            if np.isfinite(c2) and c2 <= cost:
                accepted = True
                rel_decrease = (cost - c2) / max(cost, 1e-300)
                # length of the step in units of the posterior sd (Laplace metric J^T W J / sigma^2)
                sig = c / HUBER_K if np.isfinite(c) else np.sqrt(2.0 * cost / max(sol["r"].size - len(theta), 1))
                step_sd = float(np.sqrt(max(step @ jtj @ step, 0.0))) / max(sig, 1e-300)
                theta, sol = trial, sol2
                c = prob.scale(sol)                       # re-weight (IRLS) at the new point
                cost, jtj, jtr = prob.accumulate(sol, c)
                lam = max(lam / 3.0, 1e-9)
                break
            lam *= 4.0
        history.append({"iteration": it, "cost": cost, "lambda": lam, "huber_c": c if np.isfinite(c) else None,
                        "params": {n: float(np.exp(t)) for n, t in zip(prob.names, theta)}})
        if accepted:
            history[-1].update(rel_decrease=rel_decrease, step_sd=step_sd)
        if not accepted:
            converged = float(np.max(np.abs(step))) < 1e-3   # stuck at a (numerical) minimum
            break
        m = float(np.max(np.abs(step)))
        if m < xtol or (rel_decrease < ftol and (m < 1e-3 or step_sd < sd_tol)):
            converged = True
            break
    prob.last_states = sol["states"]
    return theta, cost, sol, c, it, converged


def calibrate(u0: np.ndarray, observations: list[Observation], spacing_mm, tissue: np.ndarray,
              p_wm: np.ndarray, p_gm: np.ndarray, schedule: Schedule | None = None, *,
              start: GrowthParams | None = None, fit: tuple[str, ...] | None = None, dt_day: float = 0.5,
              rt_mask: np.ndarray | None = None, margin_mm: float = 25.0, boundary_tol: float = 1e-3,
              max_iter: int = 20, xtol: float = 1e-6, ftol: float = 1e-4, robust: bool = True) -> CalibrationResult:
    """Fit ``D_w, k, alpha, kappa`` (those the data inform, or ``fit``) to ``observations``
    (visits after the initial condition ``u0``; ``Observation.day`` in days from ``u0``).
    ``robust=False`` gives plain least squares (no Huber weights)."""
    schedule = schedule or Schedule()
    start = start or DEFAULT_START
    obs = sorted([o for o in observations if o.day > 0], key=lambda o: o.day)
    if not obs:
        raise ValueError("calibration needs at least one visit after the initial condition")
    t_end = obs[-1].day
    if fit is None:
        names, why = informative_parameters(schedule, t_end, dt_day)
    else:
        names, why = list(fit), {n: "fixed by the caller" for n in PARAM_NAMES if n not in fit}
    theta = np.log([max(_get(start, n), 1e-12) for n in names])
    tissue = np.asarray(tissue, bool)
    history: list = []
    n_fwd = n_tan = 0
    margin = margin_mm
    while True:
        box = crop_box([u0 > 0] + [o.tumour for o in obs], spacing_mm, margin)
        rd = ReactionDiffusion(spacing_mm, tissue[box], np.asarray(p_wm)[box], np.asarray(p_gm)[box])
        prob = _Problem(rd, np.asarray(u0)[box], [o.crop(box) for o in obs], schedule, start, names, dt_day,
                        None if rt_mask is None else np.asarray(rt_mask, bool)[box], robust=robust)
        theta, cost, sol, huber_c, it, converged = _lm(prob, theta, max_iter, xtol, ftol, history)
        n_fwd += rd.n_solves
        n_tan += rd.n_tangent_solves
        # largest density on a crop face that is not the grid edge
        bmax = 0.0
        for u in prob.last_states.values():
            for ax in range(3):
                for end, at_edge in ((0, box[ax].start == 0), (-1, box[ax].stop == tissue.shape[ax])):
                    if not at_edge:
                        bmax = max(bmax, float(np.take(u, end, axis=ax).max()))
        full = all(b.start == 0 and b.stop == n for b, n in zip(box, tissue.shape))
        if bmax <= boundary_tol or full:
            break
        margin *= 2.0
    params = _with(start, names, theta)

    # Laplace / Gauss-Newton covariance of the Huber M-estimator (Huber 1981, sec. 7.6):
    # Cov = sum psi(r)^2 / ((n - p) m) * H^-1,  H = sum psi'(r) S S^T (the Gauss-Newton Hessian of
    # the Huber cost),  m = mean psi'(r) (the fraction of residuals within the threshold).
    # Without down-weighted residuals this is sigma^2 (J^T J)^-1, sigma^2 = sum r^2 / (n - p).
    P = len(names)
    n_point = int(sum(int(np.isfinite(o.value[o.tumour]).sum()) for o in obs))
    r, S = sol["r"], sol["S"]
    n_res = int(r.size)
    inl = np.abs(r) <= huber_c
    psi = np.clip(r, -huber_c, huber_c)
    m_in = max(float(inl.mean()) if n_res else 1.0, 1e-12)
    dof = max(n_res - P, 1)
    sigma2 = float(psi @ psi) / dof / m_in ** 2          # noise variance (Huber's corrected estimate)
    H = S[:, inl] @ S[:, inl].T
    informed, why_not = informed_directions(H, n_res, P, sigma2)
    cov = np.full((P, P), np.nan)
    if informed.any():
        sub = np.ix_(informed, informed)
        cov[sub] = sigma2 * m_in * np.linalg.inv(H[sub])
    n_down = int((~inl).sum())
    rmse = sol["rmse"]
    sd = np.sqrt(np.maximum(np.diag(cov), 0.0))        # NaN where the data do not inform the parameter
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    flags: list[str] = []
    ident: dict[str, bool] = {}
    for i, n in enumerate(names):
        if not informed[i]:
            ident[n] = False
            flags.append(f"{n}: not identifiable ({why_not[i]})")
            continue
        ok = sd[i] <= REL_SD_LIMIT
        if not ok:
            flags.append(f"{n}: not identifiable (relative sd {sd[i]:.2f} > {REL_SD_LIMIT})")
        for j, m in enumerate(names):
            if j != i and informed[j] and abs(corr[i, j]) > CORR_LIMIT:
                ok = False
                if i < j:
                    flags.append(f"{n} and {m}: not separately identifiable (correlation {corr[i, j]:+.3f})")
        ident[n] = bool(ok)
    for n, reason in why.items():
        ident[n] = False
        flags.append(f"{n}: {reason}")
    if not converged:
        flags.append(f"optimiser stopped at max_iter={max_iter} before its tolerance (typical along a ridge of "
                     "non-identifiable parameter combinations)")
    ci = {n: (float(np.exp(theta[i] - 1.96 * sd[i])), float(np.exp(theta[i] + 1.96 * sd[i])))
          for i, n in enumerate(names) if informed[i] and sd[i] < 50.0}   # beyond e^(+-98): no interval
    return CalibrationResult(
        params=params, estimated=tuple(names), not_estimated=why,
        log_sd={n: (float(sd[i]) if informed[i] else None) for i, n in enumerate(names)}, ci95=ci,
        correlation=[[float(x) for x in row] for row in corr], identifiable=ident, flags=flags,
        sigma_u=float(np.sqrt(sigma2)), n_point=n_point, n_residuals=n_res, cost=float(cost),
        n_iterations=it, converged=converged, n_forward_solves=n_fwd, n_tangent_solves=n_tan,
        calibration_days=[o.day for o in obs],
        crop_box=[[b.start, b.stop] for b in box], boundary_max_u=bmax, rmse_per_visit=rmse, history=history,
        robust=bool(robust), huber_c=float(huber_c), n_downweighted=n_down)


def calibrate_patient(observations: list[Observation], spacing_mm, tissue, p_wm, p_gm,
                      schedule: Schedule | None = None, *, holdout_visits: int | None = None,
                      **kwargs) -> tuple[CalibrationResult, list[int], list[int]]:
    """Split the visits (``holdout_visits``; default 1 with 3+ visits), take the initial
    condition from the first visit and calibrate on the rest of the calibration visits.
    Observation days are relative to the first visit (which must be day 0)."""
    obs = sorted(observations, key=lambda o: o.day)
    if obs[0].day != 0:
        raise ValueError("the first visit must be day 0 (the model clock starts there)")
    cal, held = split_visits(len(obs), holdout_visits)
    res = calibrate(initial_density(obs[0]), [obs[i] for i in cal[1:]], spacing_mm, tissue, p_wm, p_gm,
                    schedule, **kwargs)
    return res, cal, held
