"""Validation on the held-out period, beside the naive baseline.

The fit saw nothing after ``validate_from``; the baseline replications simulate from a warm-up
before it through the held-out window.  Figures (per area and for the whole site):

* ``census_mae_rel``: mean absolute error of the hourly census (observed vs the mean over
  replications) divided by the mean observed census;
* ``arrivals_mae_rel``: the same for arrivals per hour;
* ``los_ks``: Kolmogorov-Smirnov distance between the observed lengths of stay of cases
  arriving in the window and the simulated ones (all replications pooled);
* ``daily_band_share``: the share of observed daily mean census values inside the simulated
  95 % band, a prediction interval for one more replication, ``m +- t(0.975, n-1) s
  sqrt(1 + 1/n)`` over the replications' daily means;
* key events (e.g. door to antibiotics): mean, share within the target, KS distance.

The naive baseline (../shared/GUIDE.md) is computed from the training period only: its
hour-of-week average census and arrivals, its length-of-stay and key-event distributions,
and as a daily band the 2.5-97.5 % range of its daily mean census by day of week.  The
validation reports whether the twin beats it on each figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from twinflow.hospital import metrics
from twinflow.hospital.fit import instance_hours, observed_trajectories
from twinflow.hospital.sim import Trajectories


def _clip_to_horizon(tr: Trajectories) -> Trajectories:
    """What an observer at the horizon would know: later ends are unknown (censored)."""
    h = tr.horizon
    end = np.where(tr.case_end > h, np.nan, tr.case_end)
    keep = tr.v_start < h
    v_end = np.where(tr.v_end > h, np.nan, tr.v_end)
    return Trajectories(tr.activities, tr.classes, tr.case_class, tr.arrival, end, tr.v_case[keep],
                        tr.v_act[keep], tr.v_ready[keep], tr.v_start[keep], v_end[keep], h)


def _how(model: dict, t: np.ndarray) -> np.ndarray:
    return np.floor(model["run"]["phase_h"] + t).astype(np.int64) % 168


def _mae_rel(obs: np.ndarray, pred: np.ndarray) -> float | None:
    m = float(np.mean(obs))
    return float(np.mean(np.abs(obs - pred)) / m) if m > 0 else None


def _band(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over replications (axis 0) and the 95 % prediction band for one more."""
    n = x.shape[0]
    m, s = x.mean(axis=0), x.std(axis=0, ddof=1)
    h = stats.t.ppf(0.975, n - 1) * s * np.sqrt(1 + 1 / n)
    return m, np.maximum(m - h, 0), m + h


def _ci(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95 % confidence interval of the mean over replications (counts: not below 0)."""
    n = x.shape[0]
    h = stats.t.ppf(0.975, n - 1) * x.std(axis=0, ddof=1) / np.sqrt(n)
    return np.maximum(x.mean(axis=0) - h, 0.0), x.mean(axis=0) + h


def _ks(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    return float(stats.ks_2samp(a, b).statistic) if a.size and b.size else None


def training_history(inst: pd.DataFrame, model: dict) -> Trajectories:
    """All cases that arrived before the cut-off, on the model's clock, as known at the cut-off."""
    cut_h = model["run"]["window_h"][0]
    t0 = pd.Timestamp(model["run"]["t0"])
    arrival = instance_hours(inst, t0).groupby("case")["t_in"].min()
    early = inst[inst["case"].isin(arrival.index[arrival.to_numpy() < cut_h])]
    tr = observed_trajectories(early, {**model, "run": {**model["run"], "horizon_h": cut_h}}, all_cases=True)
    return _clip_to_horizon(tr)


def validate(inst: pd.DataFrame, model: dict, reps: list[dict], rep_cases: list[pd.DataFrame]) -> tuple[dict, pd.DataFrame]:
    """Figures (dict) and the hourly series (frame) for the report."""
    run = model["run"]
    window = run["window_h"]
    edges = metrics.window_edges(window)
    hours = edges[:-1]
    obs = _clip_to_horizon(observed_trajectories(inst, model))
    hist = training_history(inst, model)
    areas = metrics.area_names(model)
    n = len(reps)
    warm = float(window[0])  # the baseline's census starts one warm-up after the first arrival

    # hourly series: observed, simulated (mean, CI, band), baseline (hour-of-week average)
    obs_census = metrics.hourly_census(obs, model, edges)
    obs_census["all"] = np.sum([obs_census[a] for a in areas], axis=0)
    sim_census = {a: np.array([r["hourly"]["census"][a] for r in reps], float) for a in areas}
    sim_census["all"] = np.sum([sim_census[a] for a in areas], axis=0)
    t_first = float(np.nanmin(hist.arrival)) if hist.arrival.size else window[0]
    h_edges = np.arange(np.ceil(t_first) + warm, window[0] + 1e-9)
    hist_census = metrics.hourly_census(hist, model, h_edges) if h_edges.size > 24 else None
    series, figures = [], {"census": {}, "replications": n}
    how = _how(model, hours)
    for a in areas + ["all"]:
        o, s = obs_census[a], sim_census[a]
        m, lo, hi = s.mean(axis=0), *_ci(s)
        if hist_census is not None:
            hc = hist_census[a] if a != "all" else np.sum([hist_census[x] for x in areas], axis=0)
            base = pd.Series(hc).groupby(_how(model, h_edges[:-1])).mean().reindex(range(168)).fillna(0.0).to_numpy()[how]
        else:
            base = np.full(hours.size, np.nan)
        # daily means and bands
        nd = hours.size // 24
        od = o[: nd * 24].reshape(nd, 24).mean(axis=1)
        sd = s[:, : nd * 24].reshape(n, nd, 24).mean(axis=2)
        _, blo, bhi = _band(sd)
        inside = float(np.mean((od >= blo) & (od <= bhi))) if nd else None
        base_inside = None
        if hist_census is not None and nd:
            hd_n = (h_edges.size - 1) // 24
            hd = (hc[: hd_n * 24].reshape(hd_n, 24).mean(axis=1))
            dow = ((np.floor(model["run"]["phase_h"] + h_edges[:-1][: hd_n * 24: 24]).astype(int) % 168) // 24)
            q = pd.DataFrame({"dow": dow, "v": hd}).groupby("dow")["v"].quantile([0.025, 0.975]).unstack()
            vdow = (np.floor(model["run"]["phase_h"] + hours[: nd * 24: 24]).astype(int) % 168) // 24
            qlo, qhi = q[0.025].reindex(vdow).to_numpy(), q[0.975].reindex(vdow).to_numpy()
            base_inside = float(np.mean((od >= qlo) & (od <= qhi)))
        figures["census"][a] = {
            "observed_mean": float(o.mean()), "simulated_mean": float(m.mean()),
            "mae_rel": _mae_rel(o, m), "baseline_mae_rel": _mae_rel(o, base) if np.isfinite(base).all() else None,
            "daily_band_share": inside, "baseline_daily_band_share": base_inside, "days": int(nd),
        }
        for k in range(hours.size):
            series.append((float(hours[k]), a, float(o[k]), float(m[k]), float(lo[k]), float(hi[k]), float(base[k])))

    # arrivals per hour
    oa = metrics.hourly_arrivals(obs, edges).astype(float)
    sa = np.array([r["hourly"]["arrivals"] for r in reps], float)
    ha = metrics.hourly_arrivals(hist, np.arange(np.ceil(t_first), window[0] + 1e-9)).astype(float)
    base_a = pd.Series(ha).groupby(_how(model, np.arange(np.ceil(t_first), window[0] + 1e-9)[:-1])).mean()
    base_a = base_a.reindex(range(168)).fillna(0.0).to_numpy()[how]
    alo, ahi = _ci(sa)
    tot = sa.sum(axis=1)
    tlo, thi = _ci(tot[:, None])
    figures["arrivals"] = {"observed_total": int(oa.sum()), "simulated_total_mean": float(tot.mean()),
                           "simulated_total_ci95": [float(tlo[0]), float(thi[0])],
                           "mae_rel": _mae_rel(oa, sa.mean(axis=0)), "baseline_mae_rel": _mae_rel(oa, base_a)}
    for k in range(hours.size):
        series.append((float(hours[k]), "arrivals", float(oa[k]), float(sa[:, k].mean()), float(alo[k]),
                       float(ahi[k]), float(base_a[k])))

    # length of stay and key events of cases arriving in the window
    oc = metrics.case_table(obs, model, window)
    sc = pd.concat(rep_cases, ignore_index=True)
    hc = metrics.case_table(hist, model, [t_first, window[0] - float(model["run"]["horizon_h"] - window[1])])
    figures["los"] = {
        "observed_n": int(len(oc)), "observed_mean_h": float(oc["los_h"].mean()) if len(oc) else None,
        "observed_median_h": float(oc["los_h"].median()) if len(oc) else None,
        "simulated_mean_h": float(sc["los_h"].mean()) if len(sc) else None,
        "simulated_median_h": float(sc["los_h"].median()) if len(sc) else None,
        "ks": _ks(oc["los_h"].to_numpy(), sc["los_h"].to_numpy()),
        "baseline_ks": _ks(oc["los_h"].to_numpy(), hc["los_h"].to_numpy()),
    }
    figures["key_events"] = {}
    for name, ke in sorted(model.get("kpi", {}).get("key_events", {}).items()):
        col = f"key_h:{name}"
        o, s, b = oc[col].to_numpy(), sc[col].to_numpy(), hc[col].to_numpy()
        rec = {"observed_n": int(np.isfinite(o).sum()), "observed_mean_h": _nanmean(o), "simulated_mean_h": _nanmean(s),
               "ks": _ks(o, s), "baseline_ks": _ks(o, b),
               "observed_reached_share": _share(np.isfinite(o)), "simulated_reached_share": _share(np.isfinite(s))}
        if ke.get("within_h") is not None:
            w = ke["within_h"]
            rec.update({"observed_share_within": _share(o[np.isfinite(o)] <= w),
                        "simulated_share_within": _share(s[np.isfinite(s)] <= w),
                        "baseline_share_within": _share(b[np.isfinite(b)] <= w)})
        figures["key_events"][name] = rec
    figures["beats_baseline"] = _verdicts(figures)
    figures["observed_kpi"] = metrics.kpis(obs, model, window)
    frame = pd.DataFrame(series, columns=["hour_h", "series", "observed", "simulated_mean", "simulated_ci95_low",
                                          "simulated_ci95_high", "baseline"])
    return figures, frame


def _nanmean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def _share(b: np.ndarray) -> float | None:
    return float(np.mean(b)) if b.size else None


def _verdicts(f: dict) -> dict:
    out = {}

    def lower(name, twin, base):
        if twin is not None and base is not None:
            out[name] = bool(twin < base)

    for a, r in f["census"].items():
        if not r["observed_mean"] and not r["simulated_mean"]:
            continue  # an area nobody was in
        lower(f"census_mae_rel:{a}", r["mae_rel"], r["baseline_mae_rel"])
        if r["daily_band_share"] is not None and r["baseline_daily_band_share"] is not None:
            out[f"daily_band_share:{a}"] = bool(abs(r["daily_band_share"] - 0.95) < abs(r["baseline_daily_band_share"] - 0.95))
    lower("arrivals_mae_rel", f["arrivals"]["mae_rel"], f["arrivals"]["baseline_mae_rel"])
    lower("los_ks", f["los"]["ks"], f["los"]["baseline_ks"])
    for name, r in f["key_events"].items():
        lower(f"key_ks:{name}", r["ks"], r["baseline_ks"])
    return out
