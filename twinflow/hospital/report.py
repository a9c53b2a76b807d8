"""The hospital twin's offline HTML report (figures embedded as PNG, one file).

Sections: data and QC; the fitted model (arrivals, capacities, routing size); validation on
the held-out period beside the naive baseline (figures, and census and arrivals observed
vs simulated with the replications' 95 % confidence band); wait distributions per
activity; the scenario comparison table.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from twinflow.io.atomic import write_text

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h2{border-bottom:1px solid #ddd;margin-top:1.6em} table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left} th{background:#f4f4f4}
.num{text-align:right;font-variant-numeric:tabular-nums} .good{color:#060} .bad{color:#a40}
img{max-width:100%;border:1px solid #ccc} .cap{font-size:.9em;color:#555;max-width:900px}"""


def _esc(x) -> str:
    return html.escape("" if x is None else str(x))


def _num(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{digits}g}"


def _table(rows: list[dict], cols: list[str]) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cls = ' class="num"' if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else ""
            cells.append(f"<td{cls}>{_esc(_num(v) if isinstance(v, (int, float, np.number, bool)) else v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _series_figure(hourly: pd.DataFrame, series: list[str], ylabel: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(series), 1, figsize=(11, 2.4 * len(series)), squeeze=False, sharex=True)
    for ax, name in zip(axes[:, 0], series):
        d = hourly[hourly["series"] == name]
        day = (d["hour_h"] - d["hour_h"].min()) / 24.0
        ax.fill_between(day, d["simulated_ci95_low"], d["simulated_ci95_high"], color="tab:blue", alpha=0.25,
                        linewidth=0, label="twin, 95 % CI of the mean")
        ax.plot(day, d["simulated_mean"], color="tab:blue", lw=0.8, label="twin, mean of replications")
        ax.plot(day, d["baseline"], color="tab:gray", lw=0.8, ls="--", label="baseline (training hour-of-week mean)")
        ax.plot(day, d["observed"], color="black", lw=0.7, label="observed")
        ax.set_ylabel(f"{name}\n{ylabel}")
    axes[0, 0].legend(fontsize=7, loc="upper right", ncol=2)
    axes[-1, 0].set_xlabel("days into the held-out period")
    fig.tight_layout()
    return _png(fig)


def _wait_figure(reps: list[dict], observed: dict) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twinflow.hospital.metrics import QUANTILES

    acts = sorted({a for r in reps for a in r["kpi"]["activities"]})
    if not acts:
        return None
    cols = 4
    rows = (len(acts) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.3 * rows), squeeze=False)
    for ax, a in zip(axes.ravel(), acts):
        for r in reps:
            q = r["kpi"]["activities"].get(a, {}).get("wait_quantiles_h")
            if q and None not in q:
                ax.plot(q, QUANTILES, color="tab:blue", alpha=0.35, lw=0.8)
        q = observed.get(a, {}).get("wait_quantiles_h")
        if q and None not in q:
            ax.plot(q, QUANTILES, color="black", lw=1.2)
        ax.set_title(a, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xscale("symlog", linthresh=0.1)
    for ax in axes.ravel()[len(acts):]:
        ax.axis("off")
    fig.suptitle("wait before each activity (hours; x: wait, y: cumulative share) - blue: replications, black: observed",
                 fontsize=9)
    fig.tight_layout()
    return _png(fig)


def write_report(out: str | Path, *, site: str, qc: dict, fit: dict, validation: dict, hourly: pd.DataFrame,
                 scenarios: pd.DataFrame, baseline_reps: list[dict]) -> None:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Hospital twin {_esc(site)}</title>"
             f"<style>{CSS}</style></head><body><h1>Hospital operations twin: {_esc(site)}</h1>"]
    parts.append("<h2>Event log and QC</h2>")
    parts.append(f"<p>{qc['cases']} cases, {qc['activity_instances']} activity instances, arrivals "
                 f"{_esc(qc['first_arrival'][:10])} to {_esc(qc['last_arrival'][:10])}. Case ids are pseudonymised.</p>")
    parts.append(_table([{"check": k, "count": v} for k, v in qc["counts"].items()], ["check", "count"]))
    tr, arr = fit["training"], fit["arrivals"]
    parts.append("<h2>Fitted model (training period)</h2>")
    parts.append(f"<p>Training {_esc(tr['from'][:10])} to {_esc(tr['until'][:10])}: {tr['cases']} cases "
                 f"({tr['cases_open_at_cutoff']} open at the cut-off). Arrivals: Poisson GLM ({_esc(arr['model'])}), "
                 f"mean {_num(arr['mean_rate_per_h'])}/h, trend {_num(arr['trend_per_week'])} per week "
                 f"(log scale{'' if not arr['trend_ci95'] else ', 95 % CI ' + ', '.join(_num(x) for x in arr['trend_ci95'])}).</p>")
    if fit["resources"]:
        parts.append(_table([{"resource": k, **v} for k, v in fit["resources"].items()],
                            ["resource", "capacity", "method", "max_concurrency_observed"]))
    for n in fit.get("notes", []):
        parts.append(f"<p class='cap'>{_esc(n)}</p>")
    parts.append("<h2>Validation on the held-out period</h2>")
    parts.append(f"<p class='cap'>{validation['replications']} replications. The baseline is the training period's "
                 "hour-of-week average (census, arrivals), its length-of-stay and key-event distributions, and "
                 "the 2.5-97.5 % range of its daily mean census by weekday. Lower is better for MAE and KS; the "
                 "daily band share should be near 0.95.</p>")
    rows = []
    for a, r in validation["census"].items():
        rows.append({"figure": f"census {a}: MAE / mean", "twin": r["mae_rel"], "baseline": r["baseline_mae_rel"],
                     "observed": r["observed_mean"], "simulated": r["simulated_mean"]})
        rows.append({"figure": f"census {a}: share of days in 95 % band", "twin": r["daily_band_share"],
                     "baseline": r["baseline_daily_band_share"]})
    a = validation["arrivals"]
    rows.append({"figure": "arrivals per hour: MAE / mean", "twin": a["mae_rel"], "baseline": a["baseline_mae_rel"],
                 "observed": a["observed_total"], "simulated": a["simulated_total_mean"]})
    lo = validation["los"]
    rows.append({"figure": "length of stay: KS distance", "twin": lo["ks"], "baseline": lo["baseline_ks"],
                 "observed": lo["observed_mean_h"], "simulated": lo["simulated_mean_h"]})
    for name, r in validation["key_events"].items():
        rows.append({"figure": f"{name}: KS distance", "twin": r["ks"], "baseline": r["baseline_ks"],
                     "observed": r["observed_mean_h"], "simulated": r["simulated_mean_h"]})
        if "observed_share_within" in r:
            rows.append({"figure": f"{name}: share within target", "twin": r["simulated_share_within"],
                         "baseline": r["baseline_share_within"], "observed": r["observed_share_within"]})
    parts.append(_table(rows, ["figure", "twin", "baseline", "observed", "simulated"]))
    beats = validation["beats_baseline"]
    parts.append(f"<p>The twin beats the baseline on {sum(beats.values())} of {len(beats)} comparisons"
                 + (": " + ", ".join(k for k, v in beats.items() if not v) + " are not beaten." if not all(beats.values()) else ".")
                 + "</p>")
    census_series = [s for s in hourly["series"].unique() if s != "arrivals"
                     and hourly.loc[hourly["series"] == s, ["observed", "simulated_mean"]].to_numpy().any()]
    if len(census_series) == 2:  # one area: "all" repeats it
        census_series = census_series[:1]
    parts.append(f"<img alt='census' src='{_series_figure(hourly, census_series, 'census')}'>")
    parts.append(f"<img alt='arrivals' src='{_series_figure(hourly, ['arrivals'], 'per hour')}'>")
    wf = _wait_figure(baseline_reps, validation.get("observed_kpi", {}).get("activities", {}))
    if wf:
        parts.append("<h2>Waits</h2>" + f"<img alt='waits' src='{wf}'>")
    parts.append("<h2>Scenarios</h2><p class='cap'>Mean over replications with 95 % CI; the difference from the "
                 "baseline is paired (same seeds).</p>")
    main = scenarios[~scenarios["kpi"].str.contains(":", regex=False) | scenarios["kpi"].str.startswith(
        ("occupancy:", "key_", "target_", "area_time"))]
    parts.append(_table(main.to_dict("records"), list(scenarios.columns)))
    parts.append("</body></html>\n")
    write_text(out, "\n".join(parts))

