"""Figures and the offline HTML report of a trial: CONSORT-style flow, Kaplan-Meier curves,
the subgroup forest plot, the power curve, the analysis tables and the published figures
beside the simulated ones."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twinflow.io.atomic import write_text

_RATIO = {"hazard_ratio", "odds_ratio"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    _plt().close(fig)


def consort_figure(fl: dict[str, Any], path: Path) -> None:
    plt = _plt()
    arms = list(fl["randomised"])
    fig, ax = plt.subplots(figsize=(max(6.0, 2.6 * len(arms)), 5.2), dpi=100)
    ax.axis("off")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    box = dict(boxstyle="round,pad=0.4", fc="#f4f4f4", ec="#555")

    def put(x, y, text):
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5, bbox=box)

    excl = sum(fl["excluded"].values())
    put(0.5, 0.92, f"Screened (virtual candidates)\nn = {fl['screened']}")
    reasons = "\n".join(f"{k}: {v}" for k, v in list(fl["excluded"].items())[:6])
    put(0.85, 0.74, f"Excluded n = {excl}" + (f"\n{reasons}" if reasons else ""))
    put(0.5, 0.56, f"Eligible and randomised\nn = {sum(fl['randomised'].values())}")
    ax.annotate("", xy=(0.5, 0.62), xytext=(0.5, 0.86), arrowprops=dict(arrowstyle="->"))
    ax.annotate("", xy=(0.72, 0.74), xytext=(0.5, 0.74), arrowprops=dict(arrowstyle="->"))
    for i, a in enumerate(arms):
        x = (i + 0.5) / len(arms)
        put(x, 0.32, f"{a}\nallocated n = {fl['randomised'][a]}")
        put(x, 0.10, f"analysed n = {fl['analysed'][a]}\nnot analysed n = {fl['not_analysed'][a]}")
        ax.annotate("", xy=(x, 0.38), xytext=(0.5, 0.50), arrowprops=dict(arrowstyle="->"))
        ax.annotate("", xy=(x, 0.16), xytext=(x, 0.26), arrowprops=dict(arrowstyle="->"))
    ax.set_title("Flow of virtual patients (CONSORT-style)", fontsize=10)
    _save(fig, path)


def km_figure(patients: pd.DataFrame, name: str, arms: list[str], unit_name: str, unit: float, path: Path) -> None:
    from lifelines import KaplanMeierFitter

    plt = _plt()
    ok = patients[patients["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for i, a in enumerate(arms):
        g = ok[ok["arm"] == a]
        if not len(g):
            continue
        kmf = KaplanMeierFitter().fit(g[f"{name}.time_days"].to_numpy(float) / unit, g[f"{name}.event"].to_numpy(bool))
        sf = kmf.survival_function_
        ci = kmf.confidence_interval_
        ax.step(sf.index, sf.iloc[:, 0], where="post", color=f"C{i}", label=f"{a} (n = {len(g)})")
        ax.fill_between(ci.index, ci.iloc[:, 0], ci.iloc[:, 1], step="post", color=f"C{i}", alpha=0.15)
    ax.set_xlabel(f"time ({unit_name})")
    ax.set_ylabel("probability event-free")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Kaplan-Meier: {name}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def forest_figure(analysis: dict[str, Any], path: Path) -> None:
    plt = _plt()
    primary = analysis["primary"]
    ep = analysis["endpoints"][primary]
    rows = [(f"all: {c['arm']} vs {c['vs']}", c) for c in ep["comparisons"]]
    rows += [(f"{s['covariate']} = {s['level']}: {s['arm']}", s) for s in analysis["subgroups"]]
    rows = [(lab, r) for lab, r in rows if r.get("estimate") is not None]
    if not rows:
        return
    ratio = ep["effect"] in _RATIO
    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.32 * len(rows)), dpi=100)
    for i, (lab, r) in enumerate(rows):
        y = len(rows) - 1 - i
        lo = r["ci_low"] if r["ci_low"] is not None else r["estimate"]
        hi = r["ci_high"] if r["ci_high"] is not None else r["estimate"]
        ax.plot([lo, hi], [y, y], color="k", lw=1)
        ax.plot([r["estimate"]], [y], "s", color="C0" if i >= len(ep["comparisons"]) else "C3")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([lab for lab, _ in reversed(rows)], fontsize=8)
    ax.axvline(1.0 if ratio else 0.0, color="#888", ls="--", lw=1)
    if ratio:
        ax.set_xscale("log")
    ax.set_xlabel(f"{ep['effect'].replace('_', ' ')} ({primary}), {100 * (1 - analysis['alpha']):g} % CI")
    ax.set_title("Subgroups", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def power_figure(power: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=100)
    for i, c in enumerate(power["comparisons"]):
        n = [r["n_per_arm"] for r in c["curve"]]
        p = np.array([r["power"] for r in c["curve"]])
        se = np.array([r["se"] for r in c["curve"]])
        ax.errorbar(n, p, yerr=1.96 * se, marker="o", color=f"C{i}", capsize=3, label=f"{c['arm']} vs {c['vs']}")
    ax.axhline(0.8, color="#888", ls=":", lw=1)
    ax.axhline(power["alpha"], color="#888", ls="--", lw=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("virtual patients per arm")
    ax.set_ylabel(f"power ({power['test']}, alpha {power['alpha']:g})")
    ax.set_title(f"Power against sample size: {power['endpoint']} ({power['replicates']} resampled trials per point)",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def trial_figures(doc: dict[str, Any], patients: pd.DataFrame, plots: Path) -> list[dict[str, str]]:
    """Write the figures into ``plots`` and return [{path (relative to the artefact), caption}]."""
    from twinflow.trials.analysis import TIME_UNITS

    an = doc["analysis"]
    arms = list(doc["flow"]["randomised"])
    out = []
    consort_figure(doc["flow"], plots / "consort.png")
    out.append({"path": "plots/consort.png", "caption": "Flow of virtual patients: screened, excluded (first failed "
                                                        "criterion), randomised, analysed"})
    for name, ep in an["endpoints"].items():
        if ep["kind"] == "time_to_event":
            km_figure(patients, name, arms, an["time_unit"], TIME_UNITS[an["time_unit"]], plots / f"km_{name}.png")
            out.append({"path": f"plots/km_{name}.png", "caption": f"Kaplan-Meier estimate of {name} per arm "
                                                                  "with 95 % pointwise bands"})
    if an["subgroups"]:
        forest_figure(an, plots / "forest.png")
        if (plots / "forest.png").is_file():
            out.append({"path": "plots/forest.png", "caption": f"Effect on {an['primary']} overall and by subgroup "
                                                               "(red: all patients)"})
    if an.get("power"):
        power_figure(an["power"], plots / "power.png")
        out.append({"path": "plots/power.png", "caption": "Power against sample size by resampling the simulated "
                                                          "patients (bars: 95 % Monte Carlo interval)"})
    return out


# ----------------------------------------------------------------------------- HTML
def _fmt_ci(r: dict[str, Any]) -> str:
    def f(x):
        return "n/a" if x is None else f"{x:.3g}"
    return f"{f(r.get('estimate'))} ({f(r.get('ci_low'))} to {f(r.get('ci_high'))})"


def trial_report(out: str | Path, trial_dir: str | Path) -> None:
    """``report.html`` of a trial artefact: one offline file (figures embedded)."""
    from twinflow.report.html import CSS, esc, img_tag, kv_table, table
    from twinflow.trials.artefact import load

    trial_dir = Path(trial_dir)
    doc = load(trial_dir)                # the artefact as stored
    an, fl = doc["analysis"], doc["flow"]
    p = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>twinflow trial: {esc(doc['name'])}</title>"
         f"<style>{CSS}</style></head><body>",
         f"<h1>In-silico trial {esc(doc['name'])}</h1>",
         f"<p>{esc(doc.get('title'))}</p>" if doc.get("title") else "",
         f"<p class=muted>model <b>{esc(doc['model']['name'])}</b> {esc(doc['model']['version'])} &middot; trial "
         f"format {esc(doc['format_version'])} &middot; {len(doc['sources'])} source twin(s) &middot; pipeline commit "
         f"<code>{esc(doc['pipeline'].get('git_commit'))}</code></p>",
         "<h2>Population</h2>", f"<p>{esc(doc['population_choice'])}</p>",
         "<ul>" + "".join(f"<li>{esc(a)}</li>" for a in doc["assumptions"]) + "</ul>",
         "<h2>Flow</h2>",
         table([{"stage": "screened", "n": fl["screened"]}, {"stage": "eligible", "n": fl["eligible"]}]
               + [{"stage": f"excluded: {k}", "n": v} for k, v in fl["excluded"].items()]
               + [{"stage": f"randomised to {a}", "n": n} for a, n in fl["randomised"].items()]
               + [{"stage": f"analysed in {a}", "n": n} for a, n in fl["analysed"].items()], ["stage", "n"])]
    for name, ep in an["endpoints"].items():
        unit = an["time_unit"] if ep["kind"] == "time_to_event" else ep.get("unit", "")
        p.append(f"<h2>Endpoint {esc(name)} ({esc(ep['kind'].replace('_', ' '))}{', ' + esc(unit) if unit else ''})</h2>")
        p.append(f"<p class=muted>{esc(doc['endpoints'].get(name, {}).get('description', ''))}</p>")
        p.append(table([{"arm": a, **s} for a, s in ep["arms"].items()]))
        p.append(table([{"comparison": f"{c['arm']} vs {c['vs']}",
                         ep["effect"].replace("_", " ") + " (95 % CI)": _fmt_ci(c), "p": c.get("p"),
                         **({"log-rank p": c.get("logrank_p")} if ep["kind"] == "time_to_event" else {})}
                        for c in ep["comparisons"]]))
    if an["subgroups"]:
        p.append(f"<h2>Subgroups ({esc(an['primary'])})</h2>")
        p.append(table([{"subgroup": f"{s['covariate']} = {s['level']}", "comparison": f"{s['arm']} vs {s['vs']}",
                         "n": s["n"], "effect (95 % CI)": _fmt_ci(s), "p": s.get("p")} for s in an["subgroups"]]))
    if an.get("power"):
        pw = an["power"]
        p.append(f"<h2>Power ({esc(pw['endpoint'])}, {esc(pw['test'])})</h2>")
        p.append(table([{"comparison": f"{c['arm']} vs {c['vs']}", **r} for c in pw["comparisons"] for r in c["curve"]]))
    if doc.get("published"):
        p.append("<h2>Published figures (reported beside the simulation, never used in it)</h2>")
        p.append(kv_table(doc["published"]))
    for f in doc.get("figures", []):
        path = trial_dir / f["path"]
        if path.is_file():
            p.append(f"<figure>{img_tag(path, f['caption'])}<figcaption>{esc(f['caption'])}</figcaption></figure>")
    p.append("<h2>Provenance</h2>")
    p.append(table([{"source twin": s["patient_id"], "folder": s["twin"], "twin.json sha256": s["twin_json_sha256"][:16] + "..."}
                    for s in doc["sources"]]))
    p.append(kv_table({"config sha256": doc["config"]["sha256"], "seeds": doc["seeds"],
                       "trial code digest": doc["model"]["trial_code_digest"], "twinflow": doc["software"]["twinflow"],
                       "files in artefact": len(doc["manifest"])}))
    rel = os.path.relpath(trial_dir, Path(out).parent)
    p.append(f"<p class=muted>Verify this trial with <code>twinflow verify {esc(rel)}</code>.</p>")
    p.append("</body></html>")
    write_text(out, "\n".join(x for x in p if x) + "\n")
