"""Discovery and fitting of a site's model on the training period (before ``validate_from``).

Nothing after the cut-off ``C = validate_from`` is used, except whether a case that was open
at ``C`` went on (so that its time in the current state counts as right-censored at ``C``
rather than as an end).  Methods (details and references in docs/hospital.md):

* **Process.**  Per patient class, a first-order Markov chain over activities from
  ``__start__`` to ``__end__``: the directly-follows counts of the training cases divided by
  their row totals (a row a class never left falls back to all classes pooled).
* **Arrivals.**  Hourly counts of case arrivals (first event) in a Poisson GLM (statsmodels)
  with log link: hour-of-day + day-of-week effects (``arrival_model: additive``) or one
  effect per hour of week (``hour_of_week``), plus a linear trend in weeks (``trend``).
* **Service times** (activities with lifecycle ``start`` events): ``complete - start``;
  an activity running at ``C`` is censored at ``C``.
* **Delays** before an activity (not holding a resource): the gap from the previous
  activity's end to this one's start, minus the time the activity's resource was saturated
  during that gap (that part is queueing, which the simulation produces itself).  Fitted
  per transition where it has at least ``min_observations``, else per activity.  A case
  waiting at ``C`` gives a censored gap, shared over the activities it may go to next in
  proportion to the routing probabilities.
* **Distributions**: right-censored maximum likelihood over exponential, lognormal, gamma
  and Weibull, lowest AIC (:func:`twinflow.hospital.distributions.fit_duration`).
* **Capacities**: from the site's ``resources`` config, else the maximum number of instances
  of the resource's activities in service at once in the training period (a lower bound of
  the true capacity, equal to it once the resource was ever saturated).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from twinflow.errors import InputError
from twinflow.hospital.distributions import fit_duration, spec_only
from twinflow.hospital.sim import END, START

HOUR = np.timedelta64(3600, "s")


def week_origin(t: pd.Timestamp) -> pd.Timestamp:
    """Monday 00:00 of the week containing ``t``."""
    d = pd.Timestamp(t).normalize()
    return d - pd.Timedelta(days=d.day_of_week)


def hours_since(ts: pd.Series | np.ndarray, origin: pd.Timestamp) -> np.ndarray:
    arr = np.asarray(ts, dtype="datetime64[ns]")
    return (arr - np.datetime64(origin.to_datetime64(), "ns")) / HOUR


def instance_hours(inst: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """Instances with ``t_in`` (start, or end when no start) and ``t_out`` (end) in hours."""
    df = inst.copy()
    df["t_in"] = hours_since(df["start"].fillna(df["end"]), origin)
    df["t_out"] = hours_since(df["end"], origin)
    df["has_start"] = df["start"].notna()
    return df.sort_values(["case", "t_in"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- arrivals


def fit_arrivals(arrival_h: np.ndarray, t_begin: float, t_cut: float, model: str, trend: bool) -> tuple[dict, dict]:
    """Poisson GLM of hourly arrival counts on [t_begin, t_cut) (hours since a Monday 00:00)."""
    import statsmodels.api as sm

    edges = np.arange(np.floor(t_begin), np.floor(t_cut) + 1.0)
    if edges.size < 169:
        raise InputError(f"the training period has {edges.size - 1} hours; at least one week is needed to fit arrivals")
    counts, _ = np.histogram(arrival_h, bins=edges)
    how = (edges[:-1].astype(np.int64)) % 168
    X = _design(how, edges[:-1] / 168.0, model, trend)
    # one BLAS thread: the matrices are small, and on a busy machine OpenBLAS threads made
    # this fit 40x slower (5 s instead of 0.12 s for 8,600 hours x 31 columns)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        res = sm.GLM(counts, X, family=sm.families.Poisson()).fit()
    grid = np.arange(168)
    rates = np.exp(_design(grid, np.zeros(168), model, trend) @ res.params)
    trend_w = float(res.params[-1]) if trend else 0.0
    ci = res.conf_int(0.05)
    summary = {
        "model": model, "trend": trend, "hours": int(counts.size), "arrivals": int(counts.sum()),
        "mean_rate_per_h": float(counts.mean()),
        "trend_per_week": trend_w,
        "trend_ci95": [float(ci[-1, 0]), float(ci[-1, 1])] if trend else None,
        "deviance": float(res.deviance), "df_resid": float(res.df_resid),
    }
    return {"period_h": 168, "rate_per_h": rates.tolist(), "trend_per_week": trend_w}, summary


def _design(how: np.ndarray, weeks: np.ndarray, model: str, trend: bool) -> np.ndarray:
    cols = [np.ones(how.size)]
    if model == "hour_of_week":
        cols += [(how == k).astype(float) for k in range(1, 168)]
    else:
        hod, dow = how % 24, how // 24
        cols += [(hod == k).astype(float) for k in range(1, 24)]
        cols += [(dow == k).astype(float) for k in range(1, 7)]
    if trend:
        cols.append(np.asarray(weeks, float))
    return np.column_stack(cols)


# ------------------------------------------------------------------------------ resources


def activity_pools(df: pd.DataFrame, cfg: dict) -> dict[str, str | None]:
    """Activity -> resource pool, for activities with start events (others never queue)."""
    pools: dict[str, str | None] = {}
    for act, g in df.groupby("activity", sort=True):
        if not g["has_start"].mean() >= 0.5:
            pools[act] = None
        elif act in cfg["activity_resources"]:
            pools[act] = cfg["activity_resources"][act]
        else:
            res = g.loc[g["resource"] != "", "resource"]
            pools[act] = res.value_counts().sort_index(kind="stable").idxmax() if len(res) else act
    return pools


def _busy_steps(df: pd.DataFrame, t_cut: float) -> tuple[np.ndarray, np.ndarray]:
    """Times and in-service counts (count after each time) of a set of instances."""
    s = df["t_in"].to_numpy()
    e = np.minimum(np.nan_to_num(df["t_out"].to_numpy(), nan=t_cut), t_cut)
    t = np.concatenate([s, e])
    d = np.concatenate([np.ones_like(s), -np.ones_like(e)])
    order = np.lexsort((d, t))  # at equal times, ends before starts
    return t[order], np.cumsum(d[order])


def capacities(df: pd.DataFrame, pools: dict, cfg: dict, t_cut: float) -> dict[str, dict]:
    out = {}
    for pool in sorted({p for p in pools.values() if p}):
        acts = [a for a, p in pools.items() if p == pool]
        sub = df[df["activity"].isin(acts) & df["has_start"] & (df["t_in"] < t_cut)]
        _, count = _busy_steps(sub, t_cut)
        observed = int(count.max()) if count.size else 0
        if pool in cfg["resources"]:
            cap = cfg["resources"][pool]
            out[pool] = {"capacity": cap, "method": "config", "max_concurrency_observed": observed}
        else:
            out[pool] = {"capacity": max(observed, 1), "method": "max concurrency observed in training",
                         "max_concurrency_observed": observed}
    return out


def saturated_time(df: pd.DataFrame, acts: list[str], cap: int, t_cut: float):
    """A function (a, b) -> hours in [a, b] during which all ``cap`` units were busy."""
    sub = df[df["activity"].isin(acts) & df["has_start"] & (df["t_in"] < t_cut)]
    t, count = _busy_steps(sub, t_cut)
    if t.size == 0:
        return lambda a, b: np.zeros_like(np.asarray(a, float))
    sat = (count[:-1] >= cap).astype(float) * np.diff(t)
    cum = np.concatenate([[0.0], np.cumsum(sat)])
    return lambda a, b: np.interp(b, t, cum) - np.interp(a, t, cum)


# -------------------------------------------------------------------------------- the fit


def states(df: pd.DataFrame, cfg: dict) -> pd.Series:
    """The routing state of each instance (``df`` sorted by case and time).

    Without ``areas`` a state is the activity.  With areas, an activity that has no area of
    its own (e.g. a lab test) becomes ``activity@area`` of the area the case is in, so that
    the same test in the emergency department and on a ward route and wait differently.
    """
    if not cfg["areas"]:
        return df["activity"].copy()
    area_of = {a: area for area, lst in cfg["areas"].items() for a in lst}
    own = df["activity"].map(area_of)
    ctx = own.groupby(df["case"]).ffill().fillna(cfg["default_area"])
    return df["activity"].where(own.notna(), df["activity"] + "@" + ctx)


def fit_site(inst: pd.DataFrame, cfg: dict) -> tuple[dict, dict]:
    """Fit the site's model; returns (model, summary).  ``inst`` is the canonical table."""
    cut = pd.Timestamp(cfg["validate_from"])
    t_first = inst["start"].fillna(inst["end"]).min()
    if not t_first < cut:
        raise InputError(f"site {cfg['site']}: validate_from {cut} leaves no training data")
    origin = week_origin(t_first)
    df = instance_hours(inst, origin)
    df["state"] = states(df, cfg)
    t_cut = float(hours_since(pd.Series([cut]), origin)[0])
    log_end = float(np.nanmax(np.concatenate([df["t_in"].to_numpy(), df["t_out"].to_numpy()])))
    arrival = df.groupby("case", sort=True)["t_in"].min()
    train_cases = arrival.index[arrival.to_numpy() < t_cut]
    tr = df[df["case"].isin(train_cases)].copy()
    continues = tr.groupby("case")["t_in"].transform("max") >= t_cut  # case went on after C
    vis = tr[tr["t_in"] < t_cut].copy()
    vis["t_out"] = vis["t_out"].where(vis["t_out"] < t_cut)  # ends after C are not seen
    vis["open_after"] = continues.loc[vis.index].to_numpy()
    st = sorted(vis["state"].unique())
    base = vis.groupby("state")["activity"].first().to_dict()
    cls_of = vis.groupby("case")["class"].first()
    classes = sorted(cls_of.unique())
    notes: list[str] = []

    # arrivals and classes
    arrivals, arr_summary = fit_arrivals(arrival.loc[train_cases].to_numpy(), float(arrival.min()), t_cut,
                                         cfg["arrival_model"], bool(cfg["trend"]))
    mix = cls_of.value_counts()
    class_p = [float(mix.get(c, 0) / mix.sum()) for c in classes]

    # routing: directly-follows counts of states per class
    vis["next"] = vis.groupby("case")["state"].shift(-1)
    vis["prev"] = vis.groupby("case")["state"].shift(1).fillna(START)
    last = vis["next"].isna()
    vis.loc[last & ~vis["open_after"] & vis["t_out"].notna(), "next"] = END
    routing, routing_n = _routing(directly_follows(vis), classes)

    # resources (by activity) and capacities
    pools = activity_pools(vis, cfg)
    caps = capacities(vis, pools, cfg, t_cut)
    sat = {}
    for pool, c in caps.items():
        if isinstance(c["capacity"], int):
            sat[pool] = saturated_time(vis, [a for a, p in pools.items() if p == pool], c["capacity"], t_cut)

    # service times (per activity, shared by its states)
    services, service_fit = {}, {}
    for a in sorted(vis["activity"].unique()):
        g = vis[(vis["activity"] == a) & vis["has_start"]]
        if pools.get(a) is None and g.empty:
            continue
        done = g["t_out"].notna()
        d = fit_duration(g.loc[done, "t_out"] - g.loc[done, "t_in"], min(t_cut, log_end) - g.loc[~done, "t_in"])
        service_fit[a] = d
        services[a] = spec_only(d)

    # delays: gap from the previous end to this start, less the saturated time of the pool
    prev_end = vis.groupby("case")["t_out"].shift(1)
    ok = (vis["prev"] != START) & prev_end.notna()
    gaps = vis[ok].assign(gap=(vis["t_in"] - prev_end)[ok].clip(lower=0.0))
    for pool, f in sat.items():
        m = (gaps["activity"].map(pools) == pool).to_numpy()
        if m.any():
            a0 = prev_end[ok].to_numpy()[m]
            gaps.loc[gaps.index[m], "gap"] = np.maximum(gaps["gap"].to_numpy()[m] - f(a0, gaps["t_in"].to_numpy()[m]), 0.0)
    waiting = vis[last & vis["open_after"] & vis["t_out"].notna()]  # finished; next step after C
    waiting = pd.DataFrame({"class": waiting["class"], "src": waiting["state"], "c": t_cut - waiting["t_out"]})
    delays, delay_fit, pair_delays, pair_fit = _fit_delays(gaps, waiting, routing, int(cfg["min_observations"]))
    if not vis["has_start"].any():
        notes.append("the log has no lifecycle start events: every activity is a point event, the time "
                     "before it a delay; no resource queues are modelled")

    area_of = {a: area for area, lst in cfg["areas"].items() for a in lst}
    model = {
        "format": "twinflow.hospital.model",
        "site": cfg["site"],
        "arrivals": {**arrivals, "origin": origin.isoformat()},
        "classes": {"names": classes, "p": class_p,
                    "priority": {c: int(cfg["class_priority"].get(c, 0)) for c in classes}},
        "activities": {s_: {"activity": base[s_], "resource": pools.get(base[s_]), "service": services.get(base[s_]),
                            "delay": delays.get(s_), "area": area_of.get(base[s_])} for s_ in st},
        "delays": pair_delays,
        "routing": routing,
        "resources": {p: {"capacity": c["capacity"]} for p, c in caps.items() if c["capacity"] is not None},
        "default_area": cfg["default_area"],
        "kpi": {"key_events": cfg["key_events"], "targets": cfg["targets"]},
        "run": run_settings(cfg, origin, arrival, cut),
    }
    for s_ in st:  # a resource configured as unlimited (null): no queue
        if model["activities"][s_]["resource"] not in model["resources"]:
            model["activities"][s_]["resource"] = None
    summary = {
        "site": cfg["site"],
        "training": {"from": t_first.isoformat(), "until": cut.isoformat(), "cases": int(len(train_cases)),
                     "cases_open_at_cutoff": int(vis.loc[vis["open_after"], "case"].nunique()),
                     "censored_gaps": int(len(waiting))},
        "arrivals": arr_summary,
        "classes": dict(zip(classes, class_p)),
        "routing_counts": routing_n,
        "resources": caps,
        "service": service_fit,
        "delay": delay_fit,
        "transition_delay": pair_fit,
        "notes": notes,
    }
    return model, summary


EM_ITERATIONS = 3


def _fit_delays(gaps: pd.DataFrame, waiting: pd.DataFrame, routing: dict, min_n: int):
    """Delays per state (and per transition with at least ``min_n`` gaps), with the gaps of
    cases still waiting at the cut-off as censored observations.

    Which state such a case was waiting for is unknown: each candidate ``B`` (a routing
    target other than the end) gets the weight ``P(A -> B) S_AB(c) / sum_C P(A -> C) S_AC(c)``
    (the posterior of ``B`` given that nothing happened for ``c`` hours), with the survival
    functions of the current fit: an EM iteration, repeated ``EM_ITERATIONS`` times from a
    fit of the observed gaps alone."""
    from twinflow.hospital.distributions import survival

    by_state = {s: g["gap"].to_numpy() for s, g in gaps.groupby("state", sort=True)}
    by_pair = {k: g["gap"].to_numpy() for k, g in gaps.groupby(["prev", "state"], sort=True) if len(g) >= min_n}
    cand = []
    for r in waiting.itertuples(index=False):
        for dst, p in sorted(routing[r[0]].get(r[1], {}).items()):
            if dst != END and p > 0:
                cand.append((r[0], r[1], dst, float(r[2]), float(p), len(cand) and 0))
    cand = pd.DataFrame(cand, columns=["class", "src", "dst", "c", "p", "w"])
    cand["obs"] = cand.groupby(["class", "src", "c"], sort=False).ngroup() if len(cand) else []
    state_fit = {s: fit_duration(x) if x.size >= 2 else None for s, x in by_state.items()}
    pair_fit = {k: fit_duration(x) for k, x in by_pair.items()}
    for _ in range(EM_ITERATIONS if len(cand) else 0):
        surv = np.array([survival(spec_only(pair_fit.get((r.src, r.dst)) or state_fit.get(r.dst)), r.c)
                         for r in cand.itertuples()], float).ravel()
        num = cand["p"].to_numpy() * surv
        den = pd.Series(num).groupby(cand["obs"].to_numpy()).transform("sum").to_numpy()
        cand["w"] = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        live = cand[cand["w"] > 1e-9]
        for s in sorted(set(live["dst"]) & set(by_state)):
            cc = live[live["dst"] == s]
            if by_state[s].size >= 2:
                state_fit[s] = fit_duration(by_state[s], cc["c"], censored_weights=cc["w"])
        for (src, dst) in sorted(set(zip(live["src"], live["dst"])) & set(by_pair)):
            cc = live[(live["src"] == src) & (live["dst"] == dst)]
            pair_fit[(src, dst)] = fit_duration(by_pair[(src, dst)], cc["c"], censored_weights=cc["w"])
    delays = {s: spec_only(d) for s, d in state_fit.items()}
    pair_delays: dict[str, dict] = {}
    for (src, dst), d in sorted(pair_fit.items()):
        pair_delays.setdefault(src, {})[dst] = spec_only(d)
    return delays, state_fit, pair_delays, {f"{a} -> {b}": d for (a, b), d in sorted(pair_fit.items())}


def directly_follows(vis: pd.DataFrame) -> pd.Series:
    """Counts of (class, src, dst) transitions, with ``__start__`` and ``__end__``; ``vis``
    has ``class``, ``state`` and ``next`` (the next state, ``__end__``, or NaN if unknown)."""
    pair = vis[vis["next"].notna()]
    firsts = vis.groupby("case").head(1)
    return pd.concat([
        pd.DataFrame({"class": firsts["class"], "src": START, "dst": firsts["state"]}),
        pd.DataFrame({"class": pair["class"], "src": pair["state"], "dst": pair["next"]}),
    ]).value_counts().sort_index()


def _routing(counts: pd.Series, classes: list[str]) -> tuple[dict, dict]:
    pooled: dict[str, dict[str, int]] = {}
    per: dict[str, dict[str, dict[str, int]]] = {c: {} for c in classes}
    for (c, src, dst), n in counts.items():
        per[c].setdefault(src, {})[dst] = per[c].get(src, {}).get(dst, 0) + int(n)
        pooled.setdefault(src, {})[dst] = pooled.get(src, {}).get(dst, 0) + int(n)
    routing = {}
    for c in classes:
        rows = {}
        for src in sorted(set(pooled) | set(per[c])):
            row = per[c].get(src) or pooled[src]
            tot = sum(row.values())
            rows[src] = {dst: n / tot for dst, n in sorted(row.items())}
        # an activity a class can reach but never left in training: the pooled row, else end
        reach = {dst for row in rows.values() for dst in row} - {END}
        for a in sorted(reach - set(rows)):
            row = pooled.get(a, {END: 1})
            tot = sum(row.values())
            rows[a] = {dst: n / tot for dst, n in sorted(row.items())}
        routing[c] = rows
    return routing, {c: per[c] for c in classes}


def run_settings(cfg: dict, origin: pd.Timestamp, arrival: pd.Series, cut: pd.Timestamp) -> dict:
    """Simulated period: warm-up before the cut-off, the held-out window, a drain after it."""
    until = cfg["validate_until"]
    last_arrival = origin + pd.Timedelta(hours=float(arrival.max()))
    end = pd.Timestamp(until) if until else last_arrival
    if end <= cut:
        raise InputError(f"site {cfg['site']}: no arrivals after validate_from {cut} to validate on")
    warm = float(cfg["warmup_days"]) * 24.0
    window = (end - cut) / pd.Timedelta(hours=1)
    t0 = cut - pd.Timedelta(hours=warm)
    t0_h = (t0 - origin) / pd.Timedelta(hours=1)
    return {
        "t0": t0.isoformat(),
        "horizon_h": warm + window + float(cfg["drain_days"]) * 24.0,
        "window_h": [warm, warm + window],
        "phase_h": float(t0_h % 168.0),
        "trend_weeks0": float(t0_h / 168.0),
    }


def observed_trajectories(inst: pd.DataFrame, model: dict, all_cases: bool = False):
    """The log's cases as :class:`~twinflow.hospital.sim.Trajectories` on the model's clock
    (hours from the run's ``t0``): all of them, or those with an event at or after ``t0``."""
    from twinflow.hospital.sim import Trajectories

    t0 = pd.Timestamp(model["run"]["t0"])
    df = instance_hours(inst, t0)
    areas: dict[str, list[str]] = {}
    for d in model["activities"].values():
        if d.get("area"):
            areas.setdefault(d["area"], []).append(d.get("activity"))
    df["activity"] = states(df, {"areas": areas, "default_area": model["default_area"]})
    last = df.groupby("case")[["t_in", "t_out"]].max().max(axis=1)
    keep = last.index if all_cases else last.index[last.to_numpy() >= 0.0]
    df = df[df["case"].isin(keep)]
    cases = sorted(df["case"].unique())
    cidx = {c: i for i, c in enumerate(cases)}
    acts = sorted(set(df["activity"]) | set(model["activities"]))
    aidx = {a: i for i, a in enumerate(acts)}
    classes = list(model["classes"]["names"])
    g = df.groupby("case", sort=True)
    first = g["t_in"].min().reindex(cases)
    end = g["t_out"].max().reindex(cases)
    cls = g["class"].first().reindex(cases).map({c: i for i, c in enumerate(classes)}).fillna(-1)
    v_case = df["case"].map(cidx).to_numpy(np.int64)
    v_start = df["t_in"].to_numpy(float)
    order = np.lexsort((v_start, v_case))
    return Trajectories(
        activities=acts, classes=classes, case_class=cls.to_numpy(np.int64), arrival=first.to_numpy(float),
        case_end=end.to_numpy(float), v_case=v_case[order], v_act=df["activity"].map(aidx).to_numpy(np.int64)[order],
        v_ready=v_start[order], v_start=v_start[order], v_end=df["t_out"].to_numpy(float)[order],
        horizon=float(model["run"]["horizon_h"]))
