"""Speed and peak memory of the oncology twin: forward solve and calibration.

    python benchmarks/oncology.py                 # 90 x 116 x 36 voxels, 1.5 x 1.5 x 3 mm
    python benchmarks/oncology.py --margin-mm 200 # calibrate on the whole grid (no crop)

Grid: MNI ICBM152 anatomy (nilearn) resampled to 1.5 x 1.5 x 3 mm and cropped to 90 x 116 x 36
voxels around the brain centre.  Horizon 225 days at 0.5-day steps, 30 x 2 Gy (Mon-Fri) with
daily temozolomide 75 mg/m^2 then 3 adjuvant cycles (Stupp, BSA 1.8 m^2), so the treatment
terms are included and all four parameters are identifiable.
Calibration data: a tumour grown with known parameters, observed at days 0, 30, 90, 160, 225
as the visible density (u >= 0.16) plus Gaussian noise of sd 0.0125 (the demo's ADC noise);
D_w, k, alpha and kappa are fitted from a start a factor ~2 away.  Prints a Markdown table;
nothing is asserted.  Quote the numbers with the machine.  The solver uses
min(2, CPUs, OMP_NUM_THREADS) threads; the forward solve is also timed on one thread.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from twinflow.demo.anatomy import load_anatomy  # noqa: E402
from twinflow.models.oncology.calibrate import calibrate  # noqa: E402
from twinflow.models.oncology.density import T2_THRESHOLD, Observation  # noqa: E402
from twinflow.models.oncology.forecast import arm_treatments  # noqa: E402
from twinflow.models.oncology.growth import GrowthParams, ReactionDiffusion  # noqa: E402
from twinflow.models.oncology.schedule import schedule_from_treatments  # noqa: E402

SHAPE = (90, 116, 36)
SPACING = (1.5, 1.5, 3.0)


def grid():
    anat = load_anatomy(spacing=SPACING)
    o = [(anat.shape[i] - SHAPE[i]) // 2 for i in range(3)]
    o[2] = min(o[2] + 4, anat.shape[2] - SHAPE[2])      # a slab through the ventricles / centrum
    box = tuple(slice(o[i], o[i] + SHAPE[i]) for i in range(3))
    return anat.tissue[box].copy(), anat.p_wm[box].copy(), anat.p_gm[box].copy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--margin-mm", type=float, default=25.0, help="calibration crop margin")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tissue, wm, gm = grid()
    rd = ReactionDiffusion(SPACING, tissue, wm, gm)
    rows = arm_treatments("stupp_60gy_30fx_tmz", "2024-01-01", start_delay_days=7, adjuvant_cycles=3)
    sched = schedule_from_treatments(rows, "2024-01-01", bsa_m2=1.8)
    truth = GrowthParams(d_w_mm2_day=0.15, k_per_day=0.05, alpha_per_gy=0.035, kappa_l_per_mg_h=0.002)

    # seed, untreated growth to a visible tumour
    c = np.array([52, 58, 18])
    idx = np.indices(SHAPE, dtype=np.float32)
    r2 = sum(((idx[i] - c[i]) * SPACING[i]) ** 2 for i in range(3))
    seed = np.where(tissue, 0.5 * np.exp(-r2 / 18.0), 0).astype(np.float32)
    pre = rd.simulate(seed, GrowthParams(truth.d_w_mm2_day, truth.k_per_day), 120.0, 0.5)[120.0]
    u0 = np.where(pre >= T2_THRESHOLD, pre, 0).astype(np.float32)

    # forward solve over the horizon (treatment terms included)
    n_steps = 450

    def best_forward(solver) -> float:
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            solver.simulate(u0, truth, 225.0, 0.5, schedule=sched)
            times.append(time.perf_counter() - t)
        return min(times)

    fwd = best_forward(rd)
    fwd1 = best_forward(ReactionDiffusion(SPACING, tissue, wm, gm, threads=1))

    days = [30.0, 90.0, 160.0, 225.0]
    states = rd.simulate(u0, truth, 225.0, 0.5, schedule=sched, save_days=days)
    rng = np.random.default_rng(7)
    obs = []
    for d in days:
        u = states[d]
        m = u >= T2_THRESHOLD
        val = np.where(m, u + rng.normal(0, 0.0125, u.shape), np.nan).astype(np.float32)
        obs.append(Observation(d, val, np.where(m, T2_THRESHOLD, 0).astype(np.float32),
                               np.where(m, 1.0, T2_THRESHOLD).astype(np.float32), m))
    start = GrowthParams(0.08, 0.03, 0.02, 0.001)
    t = time.perf_counter()
    res = calibrate(u0, obs, SPACING, tissue, wm, gm, sched, start=start, margin_mm=args.margin_mm)
    cal = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    crop = [b - a for a, b in res.crop_box]
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print()
    print("| quantity | value |")
    print("|---|---|")
    print(f"| grid (voxels, mm) | {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]}, {SPACING} ; tissue {int(tissue.sum())} |")
    print(f"| forward solve, 225 d / 450 steps, 30 fx + TMZ, {rd.threads} threads (best of {args.repeat}) "
          f"| {fwd:.3f} s |")
    print(f"| per step | {fwd / n_steps * 1e3:.2f} ms |")
    print(f"| forward solve, 1 thread | {fwd1:.3f} s ({fwd1 / n_steps * 1e3:.2f} ms per step) |")
    print(f"| calibration wall time | {cal:.1f} s |")
    print(f"| calibration crop (voxels) | {crop[0]} x {crop[1]} x {crop[2]} (margin {args.margin_mm:g} mm) |")
    print(f"| forward solves / tangent solves | {res.n_forward_solves} / {res.n_tangent_solves} |")
    print(f"| LM iterations, converged | {res.n_iterations}, {res.converged} |")
    print(f"| peak RSS | {rss:.0f} MiB |")
    print()
    print("| parameter | truth | estimate | rel. error | log sd |")
    print("|---|---|---|---|---|")
    for n, f in (("d_w", "d_w_mm2_day"), ("k", "k_per_day"), ("alpha", "alpha_per_gy"), ("kappa", "kappa_l_per_mg_h")):
        tv, ev = getattr(truth, f), getattr(res.params, f)
        print(f"| {n} | {tv:g} | {ev:.6g} | {ev / tv - 1:+.2e} | {res.log_sd.get(n, float('nan')):.2e} |")
    if res.flags:
        print("\nflags: " + "; ".join(res.flags))


if __name__ == "__main__":
    main()
