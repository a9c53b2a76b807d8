"""Forecasts of the calibrated tumour twin: held-out visit metrics and what-if treatment arms.

Held-out metrics (:func:`forecast_metrics`), per visit, comparing the model prediction ``u``
with the visit's :class:`~twinflow.models.oncology.density.Observation`:

* ``dice``: Dice overlap of the predicted tumour region ``u >= 0.16`` (the FLAIR/T2
  visibility threshold, :data:`density.T2_THRESHOLD`) and the observed tumour mask
  (1 when both are empty).
* ``ccc``: Lin's concordance correlation of cell density over the union of the two regions;
  the observed density is the measured (ADC) density inside the observed tumour and 0
  outside it (below visibility), the predicted one is ``u`` where ``u >= 0.16`` and 0 elsewhere
  (what imaging would show).
* ``volume_rel_error``: ``(V_pred - V_obs) / V_obs`` of the visible tumour volume (signed).
* ``cell_count_rel_error``: the same for the visible cell count ``theta * sum(u) * voxel volume``
  over each region.

Treatment arms (:data:`ARMS`), simulated from a start state (by default the density visible at
the last visit) for ``horizon_days``; the table has one row per arm and day with the tumour
volume (ml, ``u >= 0.16``) and the total cell count (all voxels, ``theta * sum(u) * voxel volume``):

* ``stupp_60gy_30fx_tmz``: 30 x 2 Gy Monday-Friday with temozolomide 75 mg/m^2 daily (7 days a
  week) from the first to the last fraction, then ``adjuvant_cycles`` (default 6) cycles of
  150 mg/m^2 on days 1-5 every 28 days, the first 28 days after the last fraction
  (Stupp et al., N Engl J Med 2005;352:987-96; cycles 2-6 may escalate to 200 mg/m^2 -- not modelled).
* ``rt_60gy_30fx``: the same radiotherapy alone.
* ``hypo_40gy_15fx``: 15 x 2.667 Gy (40 Gy) Monday-Friday (Roa et al., J Clin Oncol 2004;22:1583-8).
* ``no_treatment``.

Treatment starts on the first weekday on or after ``start_date + start_delay_days``.

``theta`` (carrying capacity): :data:`THETA_CELLS_PER_MM3` = 1.414e6 cells/mm^3, spheres of 10 um
diameter at the densest packing fraction 0.7405 (the choice of the Yankeelov/Hormuth models of
glioma, e.g. Hormuth et al., J R Soc Interface 2017).  Relative errors do not depend on it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

import numpy as np

from twinflow.models.oncology.density import T2_THRESHOLD, Observation
from twinflow.models.oncology.growth import GrowthParams, ReactionDiffusion
from twinflow.models.oncology.schedule import schedule_from_treatments

CELL_DIAMETER_MM = 0.010
PACKING_FRACTION = 0.7405
THETA_CELLS_PER_MM3 = PACKING_FRACTION / (np.pi / 6.0 * CELL_DIAMETER_MM ** 3)   # ~1.414e6

ARMS = ("stupp_60gy_30fx_tmz", "rt_60gy_30fx", "hypo_40gy_15fx", "no_treatment")


def voxel_ml(spacing_mm) -> float:
    return float(np.prod(spacing_mm)) / 1000.0


def tumour_volume_ml(u: np.ndarray, spacing_mm, threshold: float = T2_THRESHOLD) -> float:
    return float(np.count_nonzero(u >= threshold)) * voxel_ml(spacing_mm)


def cell_count(u: np.ndarray, spacing_mm, theta: float = THETA_CELLS_PER_MM3,
               region: np.ndarray | None = None) -> float:
    uu = u if region is None else np.where(region, u, 0.0)
    return float(np.sum(uu, dtype=np.float64)) * float(np.prod(spacing_mm)) * theta


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation coefficient."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.size == 0:
        return float("nan")
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = ((x - mx) * (y - my)).mean()
    den = vx + vy + (mx - my) ** 2
    return 1.0 if den == 0 else float(2 * cov / den)


def _rel(pred: float, obs: float) -> float:
    return float("nan") if obs == 0 else (pred - obs) / obs


def forecast_metrics(u_pred: np.ndarray, obs: Observation, spacing_mm, visit: str,
                     threshold: float = T2_THRESHOLD, theta: float = THETA_CELLS_PER_MM3) -> dict[str, Any]:
    """Keys: visit, dice, ccc, volume_rel_error, cell_count_rel_error (+ the raw volumes/counts)."""
    pred_region = u_pred >= threshold
    obs_region = np.asarray(obs.tumour, bool)
    union = pred_region | obs_region
    y = np.where(pred_region, u_pred, 0.0)
    x = np.where(obs_region, obs.point_density(), 0.0)
    v_pred = float(pred_region.sum()) * voxel_ml(spacing_mm)
    v_obs = float(obs_region.sum()) * voxel_ml(spacing_mm)
    c_pred = cell_count(y, spacing_mm, theta)
    c_obs = cell_count(x, spacing_mm, theta)
    return {"visit": visit, "day": obs.day, "dice": dice(pred_region, obs_region), "ccc": ccc(x[union], y[union]),
            "volume_rel_error": _rel(v_pred, v_obs), "cell_count_rel_error": _rel(c_pred, c_obs),
            "volume_ml_pred": v_pred, "volume_ml_obs": v_obs, "cell_count_pred": c_pred, "cell_count_obs": c_obs,
            "threshold": threshold}


# ----------------------------------------------------------------------------- arms

def _weekdays_from(start: dt.date, n: int) -> list[dt.date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def arm_treatments(arm: str, start_date: Any, *, start_delay_days: int = 0, adjuvant_cycles: int = 6,
                   tmz_concomitant_mg_m2: float = 75.0, tmz_adjuvant_mg_m2: float = 150.0) -> list[dict[str, Any]]:
    """treatments.tsv-style rows (date, kind, agent, dose, unit) of one arm."""
    if arm not in ARMS:
        raise ValueError(f"unknown treatment arm {arm!r}; known: {', '.join(ARMS)}")
    d0 = start_date if isinstance(start_date, dt.date) else dt.date.fromisoformat(str(start_date)[:10])
    first = d0 + dt.timedelta(days=int(start_delay_days))
    rows: list[dict[str, Any]] = []
    if arm == "no_treatment":
        return rows
    n, dose = (15, 40.0 / 15.0) if arm == "hypo_40gy_15fx" else (30, 2.0)
    fx = _weekdays_from(first, n)
    rows += [{"date": d.isoformat(), "kind": "radiotherapy", "agent": "photon", "dose": dose, "unit": "Gy"} for d in fx]
    if arm == "stupp_60gy_30fx_tmz":
        d = fx[0]
        while d <= fx[-1]:
            rows.append({"date": d.isoformat(), "kind": "drug", "agent": "temozolomide",
                         "dose": tmz_concomitant_mg_m2, "unit": "mg/m2"})
            d += dt.timedelta(days=1)
        for c in range(adjuvant_cycles):
            s = fx[-1] + dt.timedelta(days=28 + 28 * c)
            rows += [{"date": (s + dt.timedelta(days=i)).isoformat(), "kind": "drug", "agent": "temozolomide",
                      "dose": tmz_adjuvant_mg_m2, "unit": "mg/m2"} for i in range(5)]
    rows.sort(key=lambda r: (r["date"], r["kind"]))
    return rows


def simulate_arms(u_start: np.ndarray, params: GrowthParams, spacing_mm, tissue: np.ndarray, p_wm: np.ndarray,
                  p_gm: np.ndarray, start_date: Any, *, bsa_m2: float | None, horizon_days: int = 365,
                  arms: tuple[str, ...] = ARMS, pk: Mapping[str, Mapping[str, Any]] | None = None,
                  dt_day: float = 0.5, theta: float = THETA_CELLS_PER_MM3, start_delay_days: int = 0,
                  adjuvant_cycles: int = 6, rt_mask: np.ndarray | None = None):
    """Simulate each arm from ``u_start`` (day 0 = ``start_date``); return a pandas DataFrame
    with columns arm, day, date, volume_ml, cell_count (one row per arm and day)."""
    import pandas as pd

    d0 = start_date if isinstance(start_date, dt.date) else dt.date.fromisoformat(str(start_date)[:10])
    rd = ReactionDiffusion(spacing_mm, tissue, p_wm, p_gm)
    days = list(range(0, int(horizon_days) + 1))
    vml = voxel_ml(spacing_mm)
    cells_per_u = float(np.prod(spacing_mm)) * theta
    rows = []
    for arm in arms:
        tr = arm_treatments(arm, d0, start_delay_days=start_delay_days, adjuvant_cycles=adjuvant_cycles)
        sched = schedule_from_treatments(tr, d0, bsa_m2=bsa_m2, pk=pk)
        out = rd.simulate(u_start, params, float(horizon_days), dt_day, schedule=sched, save_days=days,
                          rt_mask=rt_mask,
                          transform=lambda u: (float(np.count_nonzero(u >= T2_THRESHOLD)) * vml,
                                               float(np.sum(u, dtype=np.float64)) * cells_per_u))
        for t in days:
            v, c = out[t]
            rows.append({"arm": arm, "day": int(t), "date": (d0 + dt.timedelta(days=int(t))).isoformat(),
                         "volume_ml": v, "cell_count": c})
    return pd.DataFrame(rows, columns=["arm", "day", "date", "volume_ml", "cell_count"])


def holdout_metrics(observations: list[Observation], held: list[int], visit_labels: list[str],
                    params: GrowthParams, spacing_mm, tissue: np.ndarray, p_wm: np.ndarray, p_gm: np.ndarray,
                    schedule=None, *, dt_day: float = 0.5, rt_mask: np.ndarray | None = None,
                    theta: float = THETA_CELLS_PER_MM3) -> list[dict[str, Any]]:
    """Predict each held-out visit from the first visit (day 0, its visible density) with the
    calibrated ``params`` and score it with :func:`forecast_metrics`; each row also carries the
    same scores of the naive baseline ``baseline_locf`` (the last calibration visit's observed
    density carried forward)."""
    from twinflow.models.oncology.density import initial_density

    obs = sorted(observations, key=lambda o: o.day)
    if not held:
        return []
    days = [obs[i].day for i in held]
    rd = ReactionDiffusion(spacing_mm, tissue, p_wm, p_gm)
    pred = rd.simulate(initial_density(obs[0]), params, max(days), dt_day, schedule=schedule, save_days=days,
                       rt_mask=rt_mask)
    last = np.maximum(obs[held[0] - 1].point_density(), 0.0) if held[0] > 0 else None
    rows = []
    for i in held:
        row = forecast_metrics(pred[obs[i].day], obs[i], spacing_mm, visit_labels[i], theta=theta)
        if last is not None:
            b = forecast_metrics(last, obs[i], spacing_mm, visit_labels[i], theta=theta)
            row["baseline_locf"] = {k: b[k] for k in ("dice", "ccc", "volume_rel_error", "cell_count_rel_error")}
        rows.append(row)
    return rows
