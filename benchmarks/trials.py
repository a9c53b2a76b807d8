"""In-silico trials: replays beside published figures, speed at scale, the reduced-order
oncology option against the full model, and the statistical-honesty numbers.

    python benchmarks/trials.py replay stupp2005 [--twins results] [--grid full|coarse] [--workers 2]
    python benchmarks/trials.py replay metoprolol_cyp2d6 [--twins results]
    python benchmarks/trials.py replay aspre
    python benchmarks/trials.py scale cardiac --n 10000 --workers 2 [--twins results]
    python benchmarks/trials.py scale oncology --n 1000 --grid full --workers 2 [--twins results]
    python benchmarks/trials.py reduced --n 100 [--twins results]       # coarse grid against the full grid
    python benchmarks/trials.py honesty                                  # type I error, coverage, power

``--twins`` is a results folder with the cohort's twins (``<patient>/twin/twin.json`` and
``<patient>/sheet.json``; default ``results``, the demo's).  Trials are written under
``benchmarks/out/trials/``.  Tables are printed as Markdown; nothing is asserted.  Quote the
numbers with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "out"

from twinflow.models import registry  # noqa: E402
from twinflow.trials.config import check_trials  # noqa: E402
from twinflow.trials.runner import run_trial  # noqa: E402
from twinflow.trials.stages import load_sources, model_of  # noqa: E402


def sources_of(model: str, twins: Path):
    pids = sorted(p.parent.parent.name for p in twins.glob("*/twin/twin.json")
                  if json.loads(p.read_text())["model"]["name"] == model)
    return load_sources([twins / p / "twin" / "twin.json" for p in pids],
                        [twins / p / "sheet.json" for p in pids if (twins / p / "sheet.json").is_file()])


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load {load:.1f}"


def fmt(x, d=3):
    return "n/a" if x is None else f"{x:.{d}g}"


def ci(r):
    return f"{fmt(r['estimate'])} ({fmt(r['ci_low'])}-{fmt(r['ci_high'])})"


# ----------------------------------------------------------------------------- replays
def replay(args) -> None:
    name = args.trial
    spec = yaml.safe_load((REPO / "config" / "trials" / f"{name}.yaml").read_text())
    if args.grid:
        spec[name].setdefault("simulation", {})["grid"] = args.grid
    if args.n:
        spec[name]["n_per_arm"] = args.n
    cfg = check_trials(spec, registry)[name]
    tm = model_of(cfg)
    src = sources_of(cfg["model"], Path(args.twins)) if cfg["model"] != "pregnancy" else []
    t = time.perf_counter()
    out = run_trial(name, cfg, src, OUT, workers=args.workers, tm=tm)
    wall = time.perf_counter() - t
    doc = out["doc"]
    print(f"# {doc['title']}\n\nmachine: {machine()}; wall {wall:.0f} s "
          f"(sample {out['seconds']['sample']:.1f}, simulate {out['seconds']['simulate']:.1f}, "
          f"assemble {out['seconds']['assemble']:.1f}); sources: {', '.join(s.patient_id for s in src) or 'none'}\n")
    fl = doc["flow"]
    print(f"flow: screened {fl['screened']}, eligible {fl['eligible']}, excluded {fl['excluded']}, randomised "
          f"{fl['randomised']}, analysed {fl['analysed']}\n")
    an = doc["analysis"]
    {"stupp2005": _stupp, "metoprolol_cyp2d6": _metoprolol, "aspre": _aspre}[name](doc, an, OUT / "trials" / name, tm)


def _stupp(doc, an, d, tm):
    rows = []
    for ep, label in (("os", "overall survival"), ("pfs", "progression-free survival")):
        e = an["endpoints"][ep]
        rt, tmz = e["arms"]["rt"], e["arms"]["rt_tmz"]
        c = e["comparisons"][0]
        rows.append((f"median {label}, months (RT / RT+TMZ)",
                     f"{fmt(rt['median'])} ({fmt(rt['median_ci_low'])}-{fmt(rt['median_ci_high'])}) / "
                     f"{fmt(tmz['median'])} ({fmt(tmz['median_ci_low'])}-{fmt(tmz['median_ci_high'])})",
                     {"os": "12.1 / 14.6", "pfs": "5.0 / 6.9"}[ep]))
        rows.append((f"{label}: hazard ratio (95 % CI), log-rank p", f"{ci(c)}, p {fmt(c['logrank_p'], 2)}",
                     {"os": "0.63 (0.52-0.75), p < 0.001", "pfs": "0.54 (0.45-0.64), p < 0.001"}[ep]))
    from lifelines import KaplanMeierFitter

    pts = pd.read_parquet(d / "trial" / "patients.parquet")
    surv = []
    for arm in ("rt", "rt_tmz"):
        g = pts[(pts["arm"] == arm) & (pts["status"] == "ok")]
        k = KaplanMeierFitter().fit(g["os.time_days"] / (365.25 / 12), g["os.event"])
        surv.append(float(k.predict(24.0)))
    rows.append(("2-year survival (RT / RT+TMZ)", f"{100 * surv[0]:.1f} % / {100 * surv[1]:.1f} %", "10.4 % / 26.5 %"))
    print("| quantity | replay (this cohort's twins) | Stupp et al. 2005 |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    print("\nsubgroups (OS hazard ratio RT+TMZ vs RT):")
    for s in an["subgroups"]:
        print(f"  {s['covariate']} = {s['level']}: n {s['n']}, {ci(s)}")
    pw = an["power"]["comparisons"][0]["curve"]
    print("power (log-rank, OS): " + ", ".join(f"n {r['n_per_arm']}: {r['power']:.2f}" for r in pw))


def _metoprolol(doc, an, d, tm):
    pts = pd.read_parquet(d / "trial" / "patients.parquet")
    pts = pts[pts["status"] == "ok"]
    print("| arm | n | HR change /min | SBP change mmHg | DBP change mmHg | bradycardia (< 60/min) | Ce ng/mL |\n|---|---|---|---|---|---|---|")
    for arm, e in an["endpoints"]["hr_bpm_change"]["arms"].items():
        g = pts[pts["arm"] == arm]
        print(f"| {arm} | {e['n']} | {e['mean']:.1f} (sd {e['sd']:.1f}) | {g['sbp_mmhg_change'].mean():.1f} | "
              f"{g['dbp_mmhg_change'].mean():.1f} | {100 * g['bradycardia'].mean():.1f} % | {g['ce_ng_ml'].mean():.0f} |")
    drug = pts[pts["arm"] != "placebo"]
    pm = drug["cov.cyp2d6_phenotype"] == "Poor Metabolizer"
    nm = drug["cov.cyp2d6_phenotype"] == "Normal Metabolizer"
    from twinflow.trials.analysis import mean_difference, odds_ratio

    print("\n| PM against non-PM on metoprolol (all doses pooled) | replay | published |\n|---|---|---|")
    hr = mean_difference(drug.loc[pm, "hr_bpm_change"], drug.loc[~pm, "hr_bpm_change"])
    sbp = mean_difference(drug.loc[pm, "sbp_mmhg_change"], drug.loc[~pm, "sbp_mmhg_change"])
    dbp = mean_difference(drug.loc[pm, "dbp_mmhg_change"], drug.loc[~pm, "dbp_mmhg_change"])
    br = odds_ratio(drug.loc[pm, "bradycardia"].astype(bool), drug.loc[~pm, "bradycardia"].astype(bool))
    print(f"| heart-rate change, difference (/min) | {ci(hr)} (n PM {int(pm.sum())}) | -3 (meta-analysis); -8.5 (Rotterdam, PM vs NM) |")
    print(f"| SBP change, difference (mmHg) | {ci(sbp)} | -3 (meta-analysis) |")
    print(f"| DBP change, difference (mmHg) | {ci(dbp)} | -3 (meta-analysis); -4.8 (Rotterdam) |")
    print(f"| bradycardia, odds ratio | {ci(br)} | 3.86 (1.68-8.86) (Rotterdam) |")
    hrn = mean_difference(drug.loc[pm, "hr_bpm_change"], drug.loc[nm, "hr_bpm_change"])
    print(f"| heart-rate change, PM vs NM only (/min) | {ci(hrn)} | -8.5 (Rotterdam) |")
    print("\nsubgroups (heart-rate change vs placebo):")
    for s in an["subgroups"]:
        print(f"  {s['level']}: {s['arm']} n {s['n']}, {ci(s)}")


def _aspre(doc, an, d, tm):
    pop = pd.read_parquet(d / "trial" / "population.parquet")
    g, other = pop["param.g_weeks"], pop["param.other_delivery_weeks"]
    pe = (g >= 24) & (g < other)
    pre, term = pe & (g < 37), pe & (g >= 37)
    sp = pop["cov.screen_positive"].astype(bool)
    n = len(pop)
    e = an["endpoints"]["preterm_pe"]
    pl, asp = e["arms"]["placebo"], e["arms"]["aspirin"]
    c = e["comparisons"][0]
    rows = [("women screened", f"{n}", "26,941 (25,797 analysed)"),
            ("screen-positive rate at 1 in 100", f"{100 * sp.mean():.1f} %", "10.5 %"),
            ("detection rate, preterm PE", f"{100 * sp[pre].mean():.1f} % ({int((sp & pre).sum())}/{int(pre.sum())})",
             "76.7 % (138/180)"),
            ("detection rate, term PE", f"{100 * sp[term].mean():.1f} % ({int((sp & term).sum())}/{int(term.sum())})",
             "43.1 % (194/450)"),
            ("preterm PE in the screened population", f"{100 * pre.mean():.2f} %", "0.7 %"),
            ("preterm PE, placebo", f"{pl['events']}/{pl['n']} ({100 * pl['proportion']:.1f} %)", "35/822 (4.3 %)"),
            ("preterm PE, aspirin", f"{asp['events']}/{asp['n']} ({100 * asp['proportion']:.1f} %)", "13/798 (1.6 %)"),
            ("odds ratio (95 % CI) [input 0.38]", ci(c), "0.38 (0.20-0.74)")]
    # the screening at ASPRE's size: 26,941 women drawn from the same population (another seed)
    big = tm.population([], doc["config"]["resolved"]["population"], 26941, np.random.default_rng(26941))
    bsp = np.array([w["covariates"]["screen_positive"] for w in big])
    bg = np.array([w["params"]["g_weeks"] for w in big])
    bo = np.array([w["params"]["other_delivery_weeks"] for w in big])
    bpe = (bg >= 24) & (bg < bo)
    bpre, bterm = bpe & (bg < 37), bpe & (bg >= 37)
    rows[1:1] = [("screening of 26,941 drawn women: screen-positive rate / DR preterm / DR term / preterm PE",
                  f"{100 * bsp.mean():.1f} % / {100 * bsp[bpre].mean():.1f} % ({int((bsp & bpre).sum())}/{int(bpre.sum())}) / "
                  f"{100 * bsp[bterm].mean():.1f} % / {100 * bpre.mean():.2f} %", "10.5 % / 76.7 % / 43.1 % / 0.7 %")]
    print("| quantity | replay | ASPRE (Rolnik et al. 2017) |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    pw = an["power"]["comparisons"][0]["curve"]
    print("power (Wald test of the odds ratio): " + ", ".join(f"n {r['n_per_arm']}: {r['power']:.2f}" for r in pw))


# ----------------------------------------------------------------------------- scale
def scale(args) -> None:
    if args.model == "cardiac":
        spec = {"model": "cardiac", "arms": [{"name": "placebo", "regimen": {"dose_mg": 0}},
                                              {"name": "m100_bid", "regimen": {"dose_mg": 100, "interval_h": 12}}],
                "endpoints": ["hr_bpm_change", "sbp_mmhg_change", "bradycardia"]}
    else:
        spec = {"model": "oncology", "arms": [{"name": "rt", "regimen": {"schedule": "rt_60gy_30fx"}},
                                               {"name": "rt_tmz", "regimen": {"schedule": "stupp_60gy_30fx_tmz"}}],
                "endpoints": ["os", "pfs"], "simulation": {"grid": args.grid},
                "population": {"resection": {"biopsy": 0.165, "partial": 0.445, "complete": 0.39}}}
    spec.update({"n_per_arm": args.n, "chunk_size": args.chunk})
    name = f"scale_{args.model}_{args.grid if args.model == 'oncology' else ''}{args.n}"
    cfg = check_trials({name: spec}, registry)[name]
    src = sources_of(cfg["model"], Path(args.twins))
    t = time.perf_counter()
    out = run_trial(name, cfg, src, OUT, workers=args.workers, tm=model_of(cfg), report=True)
    wall = time.perf_counter() - t
    s = out["seconds"]
    n = 2 * args.n
    print(f"machine: {machine()}\n")
    print("| trial | virtual patients | jobs (chunks) | workers | wall s | sample s | simulate s | assemble s | "
          "CPU s per patient-arm (simulate) | wall ms per patient-arm |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {name} | {args.n} x 2 | {math.ceil(args.n / args.chunk) * 2} | {args.workers} | {wall:.0f} | {s['sample']:.1f} | "
          f"{s['simulate']:.1f} | {s['assemble']:.1f} | {s['chunk_cpu'] / n:.3f} | {1000 * wall / n:.1f} |")


# ----------------------------------------------------------------------------- reduced order
def reduced(args) -> None:
    from twinflow.trials.sampling import population_table, patient_of

    spec = {"model": "oncology", "arms": [{"name": "rt", "regimen": {"schedule": "rt_60gy_30fx"}},
                                           {"name": "rt_tmz", "regimen": {"schedule": "stupp_60gy_30fx_tmz"}}],
            "endpoints": ["os", "pfs", "enhancing_ml_6m"], "n_per_arm": args.n, "seed": 7,
            "population": {"resection": {"biopsy": 0.165, "partial": 0.445, "complete": 0.39}}}
    cfg = check_trials({"r": spec}, registry)["r"]
    tm = model_of(cfg)
    src = sources_of("oncology", Path(args.twins))
    srcs = {s.patient_id: s for s in src}
    pop = population_table(tm, src, cfg)
    rows = []
    times = {"full": 0.0, "coarse": 0.0}
    for rec in pop[pop["randomised"]].to_dict("records"):
        p = patient_of(rec)
        arm = next(a for a in cfg["arms"] if a["name"] == rec["arm"])
        r = {"arm": rec["arm"]}
        for grid in ("full", "coarse"):
            t = time.perf_counter()
            o = tm.simulate_virtual(p, arm, dict(cfg["simulation"], grid=grid), srcs)
            times[grid] += time.perf_counter() - t
            r.update({f"os_{grid}": o["os"]["time"], f"os_event_{grid}": o["os"]["event"], f"pfs_{grid}": o["pfs"]["time"],
                      f"pfs_event_{grid}": o["pfs"]["event"], f"enh_{grid}": o["enhancing_ml_6m"]})
        rows.append(r)
    df = pd.DataFrame(rows)
    from twinflow.trials.analysis import cox_hr, km_median

    print(f"machine: {machine()}; {len(df)} patient-arms, the same virtual patients on both grids\n")
    print("| quantity | full grid | coarse grid (2x per axis) | error |\n|---|---:|---:|---:|")
    for ep in ("os", "pfs"):
        d = df[f"{ep}_coarse"] - df[f"{ep}_full"]
        rel = d / df[f"{ep}_full"]
        print(f"| {ep}: per patient, median abs difference (days) | | | {np.median(np.abs(d)):.0f} "
              f"(90th pct {np.percentile(np.abs(d), 90):.0f}; median rel {100 * np.median(np.abs(rel)):.1f} %) |")
        med = {}
        hr = {}
        g1, g0 = df[df["arm"] == "rt_tmz"], df[df["arm"] == "rt"]
        for grid in ("full", "coarse"):
            hr[grid] = cox_hr(g1[f"{ep}_{grid}"], g1[f"{ep}_event_{grid}"], g0[f"{ep}_{grid}"], g0[f"{ep}_event_{grid}"])
            med[grid] = [km_median(g[f"{ep}_{grid}"] / 30.4375, g[f"{ep}_event_{grid}"])[0] for g in (g0, g1)]
        print(f"| {ep}: median months RT / RT+TMZ | {fmt(med['full'][0])} / {fmt(med['full'][1])} | "
              f"{fmt(med['coarse'][0])} / {fmt(med['coarse'][1])} | |")
        print(f"| {ep}: hazard ratio RT+TMZ vs RT | {ci(hr['full'])} | {ci(hr['coarse'])} | "
              f"{100 * (hr['coarse']['estimate'] / hr['full']['estimate'] - 1):+.1f} % |")
    d = df["enh_coarse"] - df["enh_full"]
    print(f"| enhancing volume at 6 months: median abs difference (ml) | | | {np.median(np.abs(d)):.2f} |")
    print(f"| CPU s per patient-arm (1 thread) | {times['full'] / len(df):.3f} | {times['coarse'] / len(df):.3f} | "
          f"x{times['full'] / max(times['coarse'], 1e-9):.1f} faster |")


# ----------------------------------------------------------------------------- honesty
def honesty(args) -> None:
    from scipy import stats

    from twinflow.trials import analysis as A

    rng = np.random.default_rng(20240610)
    N = args.trials

    def arm(n, rate):
        t = rng.exponential(1.0 / rate, n)
        return np.minimum(t, 150.0), t <= 150.0

    cox = lr = md = orr = 0
    for _ in range(N):
        (t1, e1), (t0, e0) = arm(40, 0.01), arm(40, 0.01)
        cox += A.cox_hr(t1, e1, t0, e0)["p"] < 0.05
        lr += A.logrank_fast(t1, e1, t0, e0) < 0.05
        md += A.mean_difference(rng.normal(0, 1, 30), rng.normal(0, 1, 30))["p"] < 0.05
        orr += A.odds_ratio(rng.random(80) < 0.3, rng.random(80) < 0.3)["p"] < 0.05
    cov = {"hr": 0, "md": 0, "or": 0}
    p1 = 0.5 * 0.3 / 0.7 / (1 + 0.5 * 0.3 / 0.7)
    for _ in range(N):
        (t1, e1), (t0, e0) = arm(60, 0.007), arm(60, 0.01)
        c = A.cox_hr(t1, e1, t0, e0)
        cov["hr"] += c["ci_low"] <= 0.7 <= c["ci_high"]
        m = A.mean_difference(rng.normal(0.4, 1, 40), rng.normal(0, 1, 40))
        cov["md"] += m["ci_low"] <= 0.4 <= m["ci_high"]
        o = A.odds_ratio(rng.random(150) < p1, rng.random(150) < 0.3)
        cov["or"] += o["ci_low"] <= 0.5 <= o["ci_high"]
    b5 = [stats.binom.ppf(q, N, 0.05) / N for q in (0.0005, 0.9995)]
    b95 = [stats.binom.ppf(q, N, 0.95) / N for q in (0.0005, 0.9995)]
    print(f"{N} simulated trials per row; 99.9 % binomial band: 5 % -> {b5[0]:.3f}-{b5[1]:.3f}, 95 % -> {b95[0]:.3f}-{b95[1]:.3f}\n")
    print("| check | rate |\n|---|---:|")
    for k, v in (("type I error, Cox Wald (identical exponential arms, 40 + 40, censoring)", cox),
                 ("type I error, log-rank", lr), ("type I error, Welch difference in means (30 + 30)", md),
                 ("type I error, odds ratio Wald (80 + 80, p 0.3)", orr)):
        print(f"| {k} | {v / N:.3f} |")
    for k, v in (("coverage of HR 0.7 by the Cox 95 % CI (60 + 60)", cov["hr"]),
                 ("coverage of a 0.4 sd shift by Welch's 95 % CI (40 + 40)", cov["md"]),
                 ("coverage of OR 0.5 by Woolf's 95 % CI (150 + 150)", cov["or"])):
        print(f"| {k} | {v / N:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("replay")
    r.add_argument("trial", choices=["stupp2005", "metoprolol_cyp2d6", "aspre"])
    r.add_argument("--twins", default="results")
    r.add_argument("--grid", choices=["full", "coarse"])
    r.add_argument("--n", type=int)
    r.add_argument("--workers", type=int, default=2)
    s = sub.add_parser("scale")
    s.add_argument("model", choices=["cardiac", "oncology"])
    s.add_argument("--n", type=int, default=1000)
    s.add_argument("--grid", choices=["full", "coarse"], default="full")
    s.add_argument("--chunk", type=int, default=250)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--twins", default="results")
    v = sub.add_parser("reduced")
    v.add_argument("--n", type=int, default=100)
    v.add_argument("--twins", default="results")
    h = sub.add_parser("honesty")
    h.add_argument("--trials", type=int, default=1000)
    args = ap.parse_args()
    {"replay": replay, "scale": scale, "reduced": reduced, "honesty": honesty}[args.cmd](args)


if __name__ == "__main__":
    main()
