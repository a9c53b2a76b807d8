"""From trajectories (simulated or observed) to census, arrivals, stays, waits and KPIs.

The same functions serve the log and the replications, so that observed and simulated
figures are defined identically:

* a case is in the area of its most recent activity that has one (config ``areas``; the
  site's ``default_area`` before the first), from its arrival (first event) to its end (last
  event; the horizon for a case still present);
* hourly census = the time-weighted mean number of cases in an area over the hour;
* the wait before an activity = its start minus the end of the case's previous activity
  (minus the arrival for the first); the queue wait = start minus the time the patient was
  ready (simulation only; the log cannot tell them apart);
* length of stay = end - arrival, censored at the horizon for a case still present;
* a key event's time = from the first start of its ``from`` activity to the first start of
  its ``to`` activity after it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twinflow.hospital.sim import Trajectories

QUANTILES = tuple(round(q, 2) for q in np.arange(0.05, 1.0, 0.05)) + (0.99,)


def _pct(x: np.ndarray, q: float) -> float | None:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, q)) if x.size else None


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def area_names(model: dict) -> list[str]:
    areas = {a.get("area") for a in model["activities"].values()} - {None}
    return sorted(areas | {model["default_area"]})


def visit_areas(tr: Trajectories, model: dict) -> np.ndarray:
    """Area index of every visit (inherited from earlier visits where the activity has none)."""
    names = area_names(model)
    idx = {a: i for i, a in enumerate(names)}
    act_area = np.array([idx.get((model["activities"].get(a) or {}).get("area"), -1) for a in tr.activities]
                        + [-1], np.int64)
    va = pd.Series(act_area[tr.v_act] if tr.v_act.size else np.empty(0, np.int64), dtype="float64")
    va[va < 0] = np.nan
    va = va.groupby(tr.v_case).ffill().fillna(idx[model["default_area"]])
    return va.to_numpy(np.int64)


def segments(tr: Trajectories, model: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(case, area, t_in, t_out) of every stay of a case in one area."""
    va = visit_areas(tr, model)
    n = tr.arrival.size
    end = np.where(np.isfinite(tr.case_end), tr.case_end, tr.horizon)
    first = np.ones(tr.v_case.size, bool)
    first[1:] = tr.v_case[1:] != tr.v_case[:-1]
    change = first.copy()
    change[1:] |= va[1:] != va[:-1]
    c, a, t = tr.v_case[change], va[change], tr.v_start[change]
    t = np.where(first[change], tr.arrival[c], t)
    nxt_same = np.zeros(c.size, bool)
    nxt_same[:-1] = c[1:] == c[:-1]
    t_out = np.where(nxt_same, np.roll(t, -1), end[c])
    # cases with no visit yet (still queueing for their first activity at the horizon)
    lone = np.setdiff1d(np.arange(n), tr.v_case)
    d = area_names(model).index(model["default_area"])
    return (np.concatenate([c, lone]), np.concatenate([a, np.full(lone.size, d)]),
            np.concatenate([t, tr.arrival[lone]]), np.concatenate([t_out, end[lone]]))


def occupancy_integral(t_in: np.ndarray, t_out: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Integral over [edges[0], edges[k]] of the number of intervals [t_in, t_out) open."""
    a, b = np.sort(t_in), np.sort(t_out)
    ca, cb = np.concatenate([[0.0], np.cumsum(a)]), np.concatenate([[0.0], np.cumsum(b)])

    def upto(e):
        na, nb = np.searchsorted(a, e), np.searchsorted(b, e)
        return (na * e - ca[na]) - (nb * e - cb[nb])

    return upto(edges) - upto(edges[:1])


def hourly_census(tr: Trajectories, model: dict, edges: np.ndarray) -> dict[str, np.ndarray]:
    c, a, t_in, t_out = segments(tr, model)
    out = {}
    for i, name in enumerate(area_names(model)):
        m = a == i
        out[name] = np.diff(occupancy_integral(t_in[m], t_out[m], edges)) / np.diff(edges)
    return out


def hourly_arrivals(tr: Trajectories, edges: np.ndarray) -> np.ndarray:
    return np.histogram(tr.arrival, bins=edges)[0]


def window_edges(window: list[float]) -> np.ndarray:
    a, b = window
    return a + np.arange(0.0, np.floor(b - a) + 1.0)


def visit_waits(tr: Trajectories) -> np.ndarray:
    prev_end = np.empty(tr.v_case.size)
    if tr.v_case.size:
        prev_end[1:] = tr.v_end[:-1]
        first = np.ones(tr.v_case.size, bool)
        first[1:] = tr.v_case[1:] != tr.v_case[:-1]
        prev_end[first] = tr.arrival[tr.v_case[first]]
    return tr.v_start - prev_end


def case_table(tr: Trajectories, model: dict, window: list[float]) -> pd.DataFrame:
    """One row per case arriving in ``window``: stay, waits, area times, key events."""
    n = tr.arrival.size
    sel = (tr.arrival >= window[0]) & (tr.arrival < window[1])
    end = np.where(np.isfinite(tr.case_end), tr.case_end, tr.horizon)
    wait = visit_waits(tr)
    total_wait = np.bincount(tr.v_case, weights=np.nan_to_num(wait), minlength=n)
    cls = np.asarray(tr.classes + ["unknown"], object)[np.where(tr.case_class >= 0, tr.case_class, len(tr.classes))]
    df = pd.DataFrame({"class": cls, "arrival_h": tr.arrival, "los_h": end - tr.arrival,
                       "los_censored": ~np.isfinite(tr.case_end), "wait_h": total_wait})
    c, a, t_in, t_out = segments(tr, model)
    for i, name in enumerate(area_names(model)):
        m = a == i
        df[f"area_h:{name}"] = np.bincount(c[m], weights=t_out[m] - t_in[m], minlength=n)
    for name, ke in sorted(model.get("kpi", {}).get("key_events", {}).items()):
        df[f"key_h:{name}"] = key_event_times(tr, states_of(tr, model, ke["from"]), states_of(tr, model, ke["to"]))
    return df[sel].reset_index(drop=True)


def states_of(tr: Trajectories, model: dict, activity: str) -> list[int]:
    """Indices of the trajectory's states that are ``activity`` (itself, ``activity@area``,
    or a fast-track copy)."""
    acts = model["activities"]
    return [i for i, a in enumerate(tr.activities) if a == activity or (acts.get(a) or {}).get("activity") == activity]


def key_event_times(tr: Trajectories, a_from: list[int], a_to: list[int]) -> np.ndarray:
    n = tr.arrival.size
    out = np.full(n, np.nan)
    if not a_from or not a_to:
        return out
    t_from = np.full(n, np.inf)
    m = np.isin(tr.v_act, a_from)
    np.minimum.at(t_from, tr.v_case[m], tr.v_start[m])
    m = np.isin(tr.v_act, a_to) & (tr.v_start >= t_from[tr.v_case])
    t_to = np.full(n, np.inf)
    np.minimum.at(t_to, tr.v_case[m], tr.v_start[m])
    ok = np.isfinite(t_from) & np.isfinite(t_to)
    out[ok] = t_to[ok] - t_from[ok]
    return out


def kpis(tr: Trajectories, model: dict, window: list[float]) -> dict:
    """Key performance indicators of cases arriving in ``window`` (resources: over the window)."""
    cases = case_table(tr, model, window)
    sel = (tr.arrival >= window[0]) & (tr.arrival < window[1])
    vis = sel[tr.v_case] if tr.v_case.size else np.zeros(0, bool)
    wait = visit_waits(tr)
    queue = tr.v_start - tr.v_ready
    acts = {}
    for i, a in enumerate(tr.activities):
        m = vis & (tr.v_act == i)
        if not m.any():
            continue
        acts[a] = {"n": int(m.sum()), "wait_mean_h": _mean(wait[m]), "wait_p95_h": _pct(wait[m], 95),
                   "queue_mean_h": _mean(queue[m]), "queue_p95_h": _pct(queue[m], 95),
                   "wait_quantiles_h": [_pct(wait[m], 100 * q) for q in QUANTILES]}
    los = cases["los_h"].to_numpy()
    out = {
        "arrivals": int(len(cases)),
        "los_mean_h": _mean(los), "los_p95_h": _pct(los, 95), "los_censored": int(cases["los_censored"].sum()),
        "wait_mean_h": _mean(cases["wait_h"].to_numpy()), "wait_p95_h": _pct(cases["wait_h"].to_numpy(), 95),
        "activities": acts,
        "occupancy": occupancy(tr, model, window),
        "area_time_mean_h": {c.split(":", 1)[1]: _mean(cases[c].to_numpy()) for c in cases if c.startswith("area_h:")},
        "key_events": {}, "targets": {},
    }
    for name, ke in sorted(model.get("kpi", {}).get("key_events", {}).items()):
        x = cases[f"key_h:{name}"].to_numpy()
        rec = {"n": int(np.isfinite(x).sum()), "mean_h": _mean(x), "p95_h": _pct(x, 95)}
        if ke.get("within_h") is not None:
            rec["share_within"] = float(np.mean(x[np.isfinite(x)] <= ke["within_h"])) if np.isfinite(x).any() else None
        out["key_events"][name] = rec
    for name, tg in sorted(model.get("kpi", {}).get("targets", {}).items()):
        col = f"area_h:{tg['area']}" if "area" in tg else "los_h"
        x = cases[col].to_numpy() if col in cases else np.empty(0)
        if "area" in tg:
            x = x[x > 0]
        out["targets"][name] = float(np.mean(x > tg["over_h"])) if x.size else None
    return out


def occupancy(tr: Trajectories, model: dict, window: list[float]) -> dict[str, float | None]:
    from twinflow.hospital.sim import capacity_profile

    edges = np.array([window[0], window[1]])
    out = {}
    for name, r in sorted(model.get("resources", {}).items()):
        acts = [i for i, a in enumerate(tr.activities) if (model["activities"].get(a) or {}).get("resource") == name]
        m = np.isin(tr.v_act, acts)
        busy = occupancy_integral(tr.v_start[m], np.where(np.isfinite(tr.v_end[m]), tr.v_end[m], tr.horizon), edges)[-1]
        prof = capacity_profile(r["capacity"])
        hours = np.arange(np.floor(window[0]), np.ceil(window[1]))
        lo, hi = np.maximum(hours, window[0]), np.minimum(hours + 1, window[1])
        phase = model.get("run", {}).get("phase_h", 0.0)
        avail = float(np.sum((hi - lo) * prof[(np.floor(phase + hours).astype(np.int64)) % 24]))
        out[name] = float(busy / avail) if avail > 0 else None
    return out
