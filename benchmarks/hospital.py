"""Hospital operations twin: a check against treat-sim, and speed for one year of an ED.

    pip install -e '.[bench]'           # treat-sim 3.0.0 (Nelson's treatment centre, SimPy)
    python benchmarks/hospital.py treat-sim [--reps 30]
    python benchmarks/hospital.py ed-year [--reps 30] [--workers 2] [--scaling-reps 6]

``treat-sim``: the twin configured as Nelson's treatment centre with treat-sim's published
parameters (twinflow.hospital.nelson) and treat-sim itself, the same number of
replications each; mean waiting time per activity (minutes) with 95 % confidence intervals
(Student t over replications), whether each mean lies inside the other's interval, and both
run times.  The two use different random streams, so agreement is statistical.

``ed-year``: one year (8,760 h) of an emergency department with about 100,000 arrivals:
the demo site's known model (twinflow.demo.eventlog) with arrival rates scaled to 100,000
a year and every capacity tripled (utilisation ~25-55 %), ``--reps`` replications
(simulation and KPIs, as one Snakemake job does) in ``--workers`` processes; then the same
``--scaling-reps`` replications on 1 and on ``--workers`` processes for the speed-up.  Peak
memory is the largest resident set of a worker (``ru_maxrss``).

Prints Markdown tables.  Nothing is asserted; quote the numbers with the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twinflow.hospital import nelson  # noqa: E402
from twinflow.hospital.scenarios import replicate  # noqa: E402
from twinflow.hospital.sim import simulate  # noqa: E402


def ci(x) -> tuple[float, float, float]:
    x = np.asarray(x, float)
    h = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean()), float(x.mean() - h), float(x.mean() + h)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, {platform.system()}"


# ------------------------------------------------------------------------------- treat-sim


def twin_nelson(reps: int, seed: int = 2013) -> tuple[dict[str, list[float]], float]:
    model, run = nelson.model(), nelson.run()
    waits: dict[str, list[float]] = {a: [] for a in nelson.TREAT_SIM_WAITS}
    t = time.perf_counter()
    for r in range(reps):
        tr = simulate(model, run, seed, r)
        q = (tr.v_start - tr.v_ready) * 60.0
        for i, a in enumerate(tr.activities):
            waits[a].append(float(q[tr.v_act == i].mean()))
    return waits, time.perf_counter() - t


def treat_sim(reps: int) -> tuple[dict[str, list[float]], float]:
    from treat_sim.model import Scenario, multiple_replications

    t = time.perf_counter()
    df = multiple_replications(Scenario(), rc_period=nelson.RUN_LENGTH_MIN, n_reps=reps)
    secs = time.perf_counter() - t
    return {a: df[col].astype(float).tolist() for a, col in nelson.TREAT_SIM_WAITS.items()}, secs


def bench_treat_sim(reps: int) -> None:
    ours, t_ours = twin_nelson(reps)
    theirs, t_theirs = treat_sim(reps)
    print(f"## Nelson's treatment centre: twin vs treat-sim 3.0.0, {reps} replications each\n")
    print("| activity | twin mean wait (min) [95 % CI] | treat-sim mean wait (min) [95 % CI] | twin in treat-sim CI | "
          "treat-sim in twin CI | Welch t-test p |")
    print("|---|---|---|---|---|---|")
    for a in nelson.TREAT_SIM_WAITS:
        m1, l1, h1 = ci(ours[a])
        m2, l2, h2 = ci(theirs[a])
        print(f"| {a} | {m1:.2f} [{l1:.2f}, {h1:.2f}] | {m2:.2f} [{l2:.2f}, {h2:.2f}] | "
              f"{'yes' if l2 <= m1 <= h2 else 'no'} | {'yes' if l1 <= m2 <= h1 else 'no'} | "
              f"{stats.ttest_ind(ours[a], theirs[a], equal_var=False).pvalue:.2f} |")
    print(f"\n| engine | total s | s per replication |\n|---|---|---|\n| twin (twinflow.hospital.sim) | "
          f"{t_ours:.2f} | {t_ours / reps:.3f} |\n| treat-sim | {t_theirs:.2f} | {t_theirs / reps:.3f} |\n")


# -------------------------------------------------------------------------------- ED year


def ed_year_model() -> dict:
    from twinflow.demo.eventlog import truth_model

    m = truth_model()
    scale = 100_000 / (float(np.mean(m["arrivals"]["rate_per_h"])) * 8760.0)
    m["arrivals"] = {"period_h": 168, "rate_per_h": [r * scale for r in m["arrivals"]["rate_per_h"]],
                     "trend_per_week": 0.0}
    for r in m["resources"].values():
        r["capacity"] *= 3
    m["activities"] = {a: {**d, "area": "ED"} for a, d in m["activities"].items()}
    m["kpi"] = {"key_events": {"door_to_doctor": {"from": "Registration", "to": "Assessment", "within_h": 1}},
                "targets": {"los_over_4h": {"over_h": 4}}}
    m["run"] = {"horizon_h": 8760.0, "window_h": [0.0, 8760.0], "phase_h": 0.0, "trend_weeks0": 0.0}
    return m


def _one(rep: int) -> tuple[int, float, float, int]:
    t, c = time.perf_counter(), time.process_time()
    summary, _ = replicate(ed_year_model(), 2024, rep)
    return rep, time.perf_counter() - t, time.process_time() - c, summary["cases_simulated"]


def _pool_run(reps: list[int], workers: int) -> tuple[float, list, float]:
    t = time.perf_counter()
    with mp.get_context("spawn").Pool(workers, maxtasksperchild=None) as pool:
        out = pool.map(_one, reps, chunksize=1)
        rss = pool.map(_maxrss, range(workers), chunksize=1)
    return time.perf_counter() - t, out, max(rss)


def _maxrss(_: int) -> float:
    time.sleep(0.2)  # let every worker answer once
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_ed_year(reps: int, workers: int, scaling_reps: int, scaling: list[int] | None = None) -> None:
    wall, out, rss = _pool_run(list(range(reps)), workers)
    per = np.array([o[1] for o in out])
    arrivals = np.array([o[3] for o in out])
    print(f"## One year of an ED, {reps} replications on {workers} worker process(es)\n", flush=True)
    print("| replications | arrivals per replication (mean) | s per replication (mean, min-max) | CPU s per replication "
          "| wall s in total | peak RSS per worker (MiB) |")
    print("|---|---|---|---|---|---|")
    print(f"| {reps} | {arrivals.mean():.0f} | {per.mean():.1f} ({per.min():.1f}-{per.max():.1f}) | "
          f"{np.mean([o[2] for o in out]):.1f} | {wall:.1f} | {rss:.0f} |\n")
    counts = sorted(set(scaling or [1, workers]))
    print(f"## Scaling: the same {scaling_reps} replications on {', '.join(map(str, counts))} processes\n")
    print(f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| processes | wall s | CPU s per replication | replications per minute | speed-up |\n|---|---|---|---|---|")
    base = None
    for w in counts:
        wall, out, _ = _pool_run(list(range(scaling_reps)), w)
        base = base or wall * counts[0]
        print(f"| {w} | {wall:.1f} | {np.mean([o[2] for o in out]):.1f} | {60 * scaling_reps / wall:.1f} | "
              f"{base / wall:.2f} |", flush=True)
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["treat-sim", "ed-year", "all"])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--scaling-reps", type=int, default=6)
    ap.add_argument("--scaling", default=None, help="process counts for the scaling table, e.g. 1,2,4,8,16")
    a = ap.parse_args()
    print(f"machine: {machine()}\n")
    if a.what in ("treat-sim", "all"):
        bench_treat_sim(a.reps)
    if a.what in ("ed-year", "all"):
        bench_ed_year(a.reps, a.workers, a.scaling_reps,
                      [int(x) for x in a.scaling.split(",")] if a.scaling else None)


if __name__ == "__main__":
    main()
