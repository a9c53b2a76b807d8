"""Speed of the cardiac twin: one cycle, steady state (cold / warm), calibration, arms.

    python benchmarks/cardiac.py [--repeat 3]

Prints a Markdown table (best of ``--repeat`` wall and CPU times) and the machine.  Nothing
here is asserted; quote the numbers with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twinflow.models.cardiac.arms import DEFAULT_ARMS, simulate_arms  # noqa: E402
from twinflow.models.cardiac.calibrate import calibrate, synthetic_patient  # noqa: E402
from twinflow.models.cardiac.circulation import DEFAULT_PARAMS, Circulation  # noqa: E402

TRUTH = dict(lv_emax_mmhg_ml=2.1, v_stressed_ml=1350.0, r_sys_mmhg_s_ml=1.25, c_sa_ml_mmhg=1.2, hr_bpm=62.0)


def timed(fn, repeat):
    best_w = best_c = float("inf")
    out = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        best_w = min(best_w, time.perf_counter() - w)
        best_c = min(best_c, time.process_time() - c)
    return best_w, best_c, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sp = synthetic_patient(DEFAULT_PARAMS.with_(**TRUTH), seed=0, noise=False)
    rows = []

    s = Circulation()
    x = s.initial_state(DEFAULT_PARAMS)
    w, c, _ = timed(lambda: s._cycle(x, DEFAULT_PARAMS), args.repeat * 5)
    rows.append(("one cardiac cycle (RK4, 200 steps)", w, c, "1 cycle"))

    w, c, r = timed(lambda: Circulation().steady_state(DEFAULT_PARAMS), args.repeat)
    rows.append(("steady state, cold start", w, c, f"{r.cycles} cycles"))

    warm = Circulation()
    warm.steady_state(DEFAULT_PARAMS)
    step = iter(range(1, 1000))

    def nudged():  # every call a new R_sys, alternately 5 % above and below the last one
        k = next(step)
        f = 1.05 if k % 2 else 1 / 1.05
        return warm.steady_state(DEFAULT_PARAMS.with_(r_sys_mmhg_s_ml=DEFAULT_PARAMS.r_sys_mmhg_s_ml * f))
    w, c, r = timed(nudged, args.repeat)
    rows.append(("steady state, warm start (R_sys changed by 5 %)", w, c, f"{r.cycles} cycles"))

    def cal(full):
        if full:
            return calibrate(sp["edv_ml"], sp["esv_ml"], sp["sbp"], sp["dbp"], sp["hr"])
        return calibrate(sp["edv_ml"], sp["esv_ml"], hr_bpm=sp["hr"])

    for full, label in ((True, "calibration EDV+ESV+SBP+DBP (4 params) + identifiability"),
                        (False, "calibration EDV+ESV (2 params) + identifiability")):
        w, c, r = timed(lambda: cal(full), args.repeat)
        rows.append((label, w, c, f"{r.n_model_evaluations} model evaluations, {r.n_cycles} cycles"))

    w, c, r = timed(lambda: simulate_arms(DEFAULT_PARAMS, DEFAULT_ARMS, "Poor Metabolizer"), args.repeat)
    rows.append((f"{len(DEFAULT_ARMS)} arms x trough/peak (PK 7 days + 8 steady states)", w, c,
                 f"{len(r['table'])} rows"))

    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} logical CPUs, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}\n")
    print("| case | wall s (best) | CPU s (best) | work |")
    print("|---|---:|---:|---|")
    for label, w, c, note in rows:
        print(f"| {label} | {w:.4f} | {c:.4f} | {note} |")


if __name__ == "__main__":
    main()
