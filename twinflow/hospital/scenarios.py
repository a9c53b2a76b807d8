"""What-if scenarios, replications and the scenario comparison table.

A scenario (config ``scenarios.<name>``) changes the fitted model; any of:

* ``capacity: {resource: n}`` -- a new capacity, an integer or a shift plan
  ``[{from_h: 8, to_h: 20, n: 4}, {from_h: 20, to_h: 8, n: 2}]`` (hours of the day);
* ``arrivals: {factor: 1.2, from_day: 0, to_day: 7}`` -- a surge: arrival rates times
  ``factor`` on those days of the held-out window (default: the whole run);
* ``fast_track: {classes: [minor], activities: [Assessment], resource: ft, capacity: 1}`` --
  those classes do those activities on a dedicated resource;
* ``routing: {class or "*": {from: {to: p}}}`` -- replaces routing rows;
* ``service_factor: {activity: f}`` -- service times of an activity times ``f``.

The baseline is the fitted model as is.  Every scenario runs the same replications with the
same seeds (common random numbers), so differences between scenarios are paired.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pandas as pd
from scipy import stats

from twinflow.errors import InputError
from twinflow.hospital import metrics
from twinflow.hospital.sim import END, START, simulate

FT_SUFFIX = " (fast track)"


def shift_plan(plan) -> list[int] | int:
    """24 hourly capacities from a list of ``{from_h, to_h, n}`` (may wrap midnight)."""
    if isinstance(plan, (int, float)) or plan is None:
        return plan
    if all(isinstance(x, (int, float)) for x in plan):
        return [int(x) for x in plan]
    hours = [None] * 24
    for s in plan:
        h = int(s["from_h"]) % 24
        while True:
            hours[h] = int(s["n"])
            h = (h + 1) % 24
            if h == int(s["to_h"]) % 24:
                break
    if any(h is None for h in hours):
        raise InputError("a shift plan must cover all 24 hours of the day")
    return hours


def _scale(d: dict | None, f: float) -> dict | None:
    if not d:
        return d
    d = dict(d)
    for k in ("mean", "sd", "scale", "min", "value"):
        if k in d:
            d[k] = d[k] * f
    return d


def apply_scenario(model: dict, name: str, sc: dict) -> dict:
    """The model under scenario ``sc`` (a new dict; ``model`` is not changed)."""
    m = copy.deepcopy(model)
    m["scenario"] = name
    acts = m["activities"]
    for res, plan in (sc.get("capacity") or {}).items():
        if res not in m["resources"]:
            raise InputError(f"scenario {name}: unknown resource {res!r} (known: {', '.join(sorted(m['resources']))})")
        m["resources"][res] = {"capacity": shift_plan(plan)}
    arr = sc.get("arrivals")
    if arr:
        w0 = m["run"]["window_h"][0]
        surge = {"factor": float(arr["factor"])}
        if "from_day" in arr:
            surge["from_h"] = w0 + 24.0 * float(arr["from_day"])
        if "to_day" in arr:
            surge["to_h"] = w0 + 24.0 * float(arr["to_day"])
        m["arrivals"].setdefault("surges", []).append(surge)
    for act, f in (sc.get("service_factor") or {}).items():
        if act not in acts:
            raise InputError(f"scenario {name}: unknown activity {act!r}")
        acts[act]["service"] = _scale(acts[act]["service"], float(f))
    for cls, rows in (sc.get("routing") or {}).items():
        targets = m["classes"]["names"] if cls == "*" else [cls]
        for c in targets:
            if c not in m["routing"]:
                raise InputError(f"scenario {name}: unknown patient class {c!r}")
            for src, row in rows.items():
                bad = [a for a in [src, *row] if a not in acts and a not in (START, END)]
                if bad:
                    raise InputError(f"scenario {name}: unknown activity {bad[0]!r} in routing")
                tot = float(sum(row.values()))
                m["routing"][c][src] = {dst: float(p) / tot for dst, p in sorted(row.items())}
    ft = sc.get("fast_track")
    if ft:
        res = ft["resource"]
        m["resources"][res] = {"capacity": shift_plan(ft.get("capacity", 1))}
        for act in ft["activities"]:
            if act not in acts:
                raise InputError(f"scenario {name}: unknown activity {act!r} in fast_track")
            acts[act + FT_SUFFIX] = {**copy.deepcopy(acts[act]), "resource": res,
                                     "activity": acts[act].get("activity", act)}
        for c in ft["classes"]:
            if c not in m["routing"]:
                raise InputError(f"scenario {name}: unknown patient class {c!r} in fast_track")
            rows = m["routing"][c]
            new = {}
            for src, row in rows.items():
                src2 = src + FT_SUFFIX if src in ft["activities"] else src
                new[src2] = {(dst + FT_SUFFIX if dst in ft["activities"] else dst): p for dst, p in row.items()}
            m["routing"][c] = new
        # transition delays into and out of the copies are those of the originals
        ren = lambda a: a + FT_SUFFIX if a in ft["activities"] else a  # noqa: E731
        delays = m.get("delays", {})
        for src in list(delays):
            row = delays[src]
            row.update({ren(dst): d for dst, d in list(row.items()) if dst in ft["activities"]})
            if src in ft["activities"]:
                delays[ren(src)] = {**row, **{ren(dst): d for dst, d in row.items()}}
    return m


def replicate(model: dict, seed: int, rep: int) -> tuple[dict, pd.DataFrame]:
    """One replication: (summary with KPIs and hourly series, table of window cases)."""
    run = model["run"]
    tr = simulate(model, run, seed, rep)
    window = run["window_h"]
    edges = metrics.window_edges(window)
    census = metrics.hourly_census(tr, model, edges)
    summary = {
        "scenario": model.get("scenario", "baseline"), "seed": int(seed), "rep": int(rep),
        "window_h": window, "cases_simulated": int(tr.arrival.size),
        "hourly": {"arrivals": metrics.hourly_arrivals(tr, edges).tolist(),
                   "census": {k: v.tolist() for k, v in census.items()}},
        "kpi": metrics.kpis(tr, model, window),
    }
    return summary, metrics.case_table(tr, model, window)


def cases_bytes(cases: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    cases.to_csv(buf, sep="\t", index=False, float_format="%.10g", lineterminator="\n")
    return buf.getvalue().encode()


# ------------------------------------------------------------------------------ gathering


def flat_kpis(k: dict) -> dict[str, float | None]:
    """The KPIs of one replication as ``name -> value`` (names like ``wait_mean_h:Triage``)."""
    out = {n: k[n] for n in ("arrivals", "los_mean_h", "los_p95_h", "wait_mean_h", "wait_p95_h")}
    for a, r in sorted(k["activities"].items()):
        for f in ("wait_mean_h", "wait_p95_h", "queue_mean_h", "queue_p95_h"):
            out[f"{f}:{a}"] = r[f]
    for res, v in sorted(k["occupancy"].items()):
        out[f"occupancy:{res}"] = v
    for area, v in sorted(k["area_time_mean_h"].items()):
        out[f"area_time_mean_h:{area}"] = v
    for name, r in sorted(k["key_events"].items()):
        out[f"key_mean_h:{name}"] = r["mean_h"]
        out[f"key_p95_h:{name}"] = r["p95_h"]
        if "share_within" in r:
            out[f"key_share_within:{name}"] = r["share_within"]
    for name, v in sorted(k["targets"].items()):
        out[f"target_share_over:{name}"] = v
    return out


def mean_ci(x) -> tuple[float | None, float | None, float | None]:
    """Mean and 95 % confidence interval over replications (Student t)."""
    x = np.asarray([v for v in x if v is not None and np.isfinite(v)], float)
    if x.size == 0:
        return None, None, None
    if x.size == 1:
        return float(x[0]), None, None
    h = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean()), float(x.mean() - h), float(x.mean() + h)


def comparison_table(summaries: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per (KPI, scenario): mean and 95 % CI over replications, and the paired
    difference from the baseline with its 95 % CI (same seeds in every scenario)."""
    flats = {s: [flat_kpis(r["kpi"]) for r in sorted(reps, key=lambda r: r["rep"])] for s, reps in summaries.items()}
    base = flats.get("baseline")
    names = sorted({n for reps in flats.values() for r in reps for n in r})
    rows = []
    for n in names:
        for s, reps in flats.items():
            vals = [r.get(n) for r in reps]
            m, lo, hi = mean_ci(vals)
            row = {"kpi": n, "scenario": s, "replications": len(reps), "mean": m, "ci95_low": lo, "ci95_high": hi}
            if base is not None and s != "baseline" and len(base) == len(reps):
                diffs = [None if (v is None or b.get(n) is None) else v - b[n] for v, b in zip(vals, base)]
                dm, dlo, dhi = mean_ci(diffs)
                row.update({"diff_vs_baseline": dm, "diff_ci95_low": dlo, "diff_ci95_high": dhi})
            rows.append(row)
    cols = ["kpi", "scenario", "replications", "mean", "ci95_low", "ci95_high", "diff_vs_baseline",
            "diff_ci95_low", "diff_ci95_high"]
    return pd.DataFrame(rows).reindex(columns=cols)
