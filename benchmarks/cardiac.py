"""Cardiac twin benchmarks: LV segmentation against expert contours, and model speed.

    python benchmarks/cardiac.py [--part segmentation|loo|convention|frames|speed|all] [--repeat 3] [--data DIR]

``segmentation``: every Sunnybrook patient in ``DIR/sunnybrook`` (default ``../shared/data``)
is segmented with the one fixed parameter set and scored against its expert contours; one
table row per patient (endocardial / epicardial Dice, ED/ES frames, EDV/ESV/EF on the
expert's slices, whole-ventricle values, seconds).
``loo``: leave-one-patient-out check of the constants that shape the endocardial border
(``LOO_GRID``: the local-wall search distance and the angular smoothing of the local
half-maximum border in ``twinflow.segment.cardiac``; the half-maximum itself is a definition,
not a fitted level): each patient in turn is held out, the grid point with the smallest loss
on the other two is chosen, and the held-out patient's numbers at that point are printed
(slow: grid x patients segmentations).
``convention``: where the expert endocardial contours lie relative to the blood-myocardium
edge (a blurred step fitted across each contour on 48 rays), per patient.
``frames``: how the experts chose ED and ES: the trigger times of the first and last frame,
the contoured frames, and the frame each rule picks (R-wave = first frame, last frame,
largest / smallest automatic volume, and the expert contours carried to the neighbouring
frames by deformable registration).
``speed``: one cycle, steady state (cold / warm), calibration, arms (best of ``--repeat``).

Prints Markdown tables and the machine.  Nothing here is asserted; quote the numbers with
the machine they ran on.
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


#: Sunnybrook cine folder -> expert contour folder (see ../shared/data/README.md)
SUNNYBROOK = (("SCD0000101", "SC-HF-I-1"), ("SCD0000201", "SC-HF-I-2"), ("SCD0000301", "SC-HF-I-4"))


def _machine() -> str:
    return (f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} logical CPUs, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def segmentation(data: Path) -> None:
    from twinflow.segment.cardiac_eval import evaluate_patient

    rows = []
    for cine, contours in SUNNYBROOK:
        d = data / "sunnybrook"
        if not (d / cine).is_dir():
            print(f"{d / cine}: not found, skipped")
            continue
        rows.append((contours, evaluate_patient(d / cine, d / contours)))
    print(_machine())
    print()
    print("Matched slices (the slices the expert contoured at both ED and ES), expert -> automatic:\n")
    print("| patient | images | Dice endo mean (min) | Dice epi | ED exp/auto | ES exp/auto | EDV ml exp/auto (Δ%) "
          "| ESV ml exp/auto (Δ%) | EF % exp/auto (Δ) | EF at expert frames "
          "| auto volume at expert ED / max, ES / min |")
    print("|---|---:|---|---:|---|---|---|---|---|---:|---|")

    def pct(a, e):
        return 100.0 * (a - e) / e

    for name, s in rows:
        epi = s.get("mean_dice_epi")
        print(f"| {name} | {s['n_images']} | {s['mean_dice_endo']:.3f} ({s['min_dice_endo']:.3f}) | "
              f"{'-' if epi is None else f'{epi:.3f}'} | {s['expert_ed_frame']}/{s['auto_ed_frame']} | "
              f"{s['expert_es_frame']}/{s['auto_es_frame']} | "
              f"{s['expert_edv_ml']:.1f}/{s['auto_edv_ml']:.1f} ({pct(s['auto_edv_ml'], s['expert_edv_ml']):+.1f}) | "
              f"{s['expert_esv_ml']:.1f}/{s['auto_esv_ml']:.1f} ({pct(s['auto_esv_ml'], s['expert_esv_ml']):+.1f}) | "
              f"{s['expert_ef_percent']:.1f}/{s['auto_ef_percent']:.1f} "
              f"({s['auto_ef_percent'] - s['expert_ef_percent']:+.1f}) | {s['auto_at_expert_frames_ef_percent']:.1f} | "
              f"{s['auto_volume_expert_ed_over_max']:.3f}, {s['auto_volume_expert_es_over_min']:.3f} |")
    print("\nWhole ventricle (automatic, every slice where the LV was found), QC and time:\n")
    print("| patient | slices (contoured) | slices found | ED/ES | EDV ml | ESV ml | EF % | LV mass g | QC plausible "
          "(min slice confidence; flags) | read s | segment s |")
    print("|---|---|---|---|---:|---:|---:|---:|---|---:|---:|")
    for name, s in rows:
        w = s["whole_ventricle"]
        mass = "-" if w["lv_mass_g"] is None else f"{w['lv_mass_g']:.0f}"
        qc = s["qc"]
        flags = ", ".join(f"{f['code']} {f['slices']}" for f in qc["flags"]) or "none"
        print(f"| {name} | {s['n_slices']} ({s['slices'][0]}-{s['slices'][-1]}) | "
              f"{w['slices_used'][0]}-{w['slices_used'][-1]} | {w['ed_frame']}/{w['es_frame']} | {w['edv_ml']:.1f} | "
              f"{w['esv_ml']:.1f} | {w['ef_percent']:.1f} | {mass} | {qc['plausible']} "
              f"({qc['min_slice_confidence']:.2f}; {flags}) | {s['seconds']['read']:.1f} | "
              f"{s['seconds']['segment']:.1f} |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


#: grid of the constants that shape the endocardial border (name -> values); the shipped values are in it.
#: Before the local half-maximum border (commit 57171cc) this grid was the fitted offset of the border:
#: _MID_FRACTION (0.4, 0.5) x _EDGE_MAX_MM (0, 1.5, 3) with _EDGE_FRACTION 0.2.
LOO_GRID = {"_LOCAL_WALL_MM": (3.0, 5.0, 7.0), "_BORDER_SMOOTH": (0, 2)}


def _loss(s: dict) -> float:
    """Disagreement with the expert on one patient: Dice deficit (points), |EDV %|, |ESV %|, 2 |EF|."""
    return (100.0 * (1.0 - s["mean_dice_endo"]) + abs(100.0 * (s["auto_edv_ml"] / s["expert_edv_ml"] - 1.0))
            + abs(100.0 * (s["auto_esv_ml"] / s["expert_esv_ml"] - 1.0))
            + 2.0 * abs(s["auto_ef_percent"] - s["expert_ef_percent"]))


def loo(data: Path) -> None:
    import itertools

    from twinflow.segment import cardiac as cs
    from twinflow.segment.cardiac_eval import evaluate_patient

    d = data / "sunnybrook"
    names = [c for _, c in SUNNYBROOK]
    shipped = {k: getattr(cs, k) for k in LOO_GRID}
    results = []
    try:
        for values in itertools.product(*LOO_GRID.values()):
            point = dict(zip(LOO_GRID, values))
            for k, v in point.items():
                setattr(cs, k, v)
            results.append((point, {c: evaluate_patient(d / cine, d / c) for cine, c in SUNNYBROOK}))
    finally:
        for k, v in shipped.items():
            setattr(cs, k, v)
    print(_machine())
    print(f"\nshipped: {shipped}\n")
    print("| grid point | " + " | ".join(f"loss {n}" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    for point, res in results:
        print(f"| {point} | " + " | ".join(f"{_loss(res[n]):.1f}" for n in names) + " |")
    print("\nLeave one patient out (constants chosen on the other two):\n")
    print("| held out | chosen | Dice endo | EDV Δ% | ESV Δ% | EF Δ points |")
    print("|---|---|---:|---:|---:|---:|")
    for held in names:
        point, res = min(results, key=lambda r: sum(_loss(r[1][n]) for n in names if n != held))
        s = res[held]
        print(f"| {held} | {point} | {s['mean_dice_endo']:.3f} | "
              f"{100 * (s['auto_edv_ml'] / s['expert_edv_ml'] - 1):+.1f} | "
              f"{100 * (s['auto_esv_ml'] / s['expert_esv_ml'] - 1):+.1f} | "
              f"{s['auto_ef_percent'] - s['expert_ef_percent']:+.1f} |")


def convention(data: Path) -> None:
    """Expert endocardial contours against the image edge: offset outside the half-maximum and edge width."""
    import numpy as np

    from twinflow.io.contours import dicom_slice_phase_index, read_polygons_per_image
    from twinflow.io.imaging import read_image_with_info
    from twinflow.segment import cardiac as cs
    from twinflow.segment.cardiac_eval import contour_edge_offsets

    d = data / "sunnybrook"
    print(_machine())
    print("\nExpert endocardial contours relative to the fitted blood-myocardium edge (median [IQR] over rays):\n")
    print("| patient | rays | contour outside the edge px | edge sigma px | offset / sigma |")
    print("|---|---:|---|---|---|")
    for cine, name in SUNNYBROOK:
        if not (d / cine).is_dir():
            continue
        img, _ = read_image_with_info(d / cine)
        arr = cs.cine_array(img)
        by_number = {f.image_number: f for f in dicom_slice_phase_index(d / cine)}
        rows = [contour_edge_offsets(arr[by_number[n].phase, by_number[n].slice], poly)
                for n, poly in read_polygons_per_image(d / name / "i-contours").items()]
        r = np.concatenate(rows)

        def q(x):
            return f"{np.median(x):+.2f} [{np.percentile(x, 25):+.2f}, {np.percentile(x, 75):+.2f}]"

        print(f"| {name} | {len(r)} | {q(r[:, 0])} | {q(r[:, 1])} | {q(r[:, 0] / r[:, 1])} |")


def frames(data: Path) -> None:
    """Evidence for the ED/ES convention of the Sunnybrook experts (see the module docstring)."""
    import numpy as np
    import pydicom

    from twinflow.segment import cardiac as cs
    from twinflow.segment.cardiac_eval import evaluate_patient, expert_volume_around

    d = data / "sunnybrook"
    print(_machine())
    print("\nTrigger times and contoured frames (frames 0..n-1 ordered by TriggerTime):\n")
    print("| patient | frames | nominal RR ms | TriggerTime first / last frame ms (median over slices) "
          "| frames x step ms | contoured frames | expert ED / ES |")
    print("|---|---:|---:|---|---:|---|---|")
    rows = []
    for cine, name in SUNNYBROOK:
        if not (d / cine).is_dir():
            continue
        s = evaluate_patient(d / cine, d / name)
        seg, fr, endo = s["segmentation"], s["dicom_frames"], s["expert_endo"]
        n = seg.n_phases
        first = float(np.median([f.trigger_time_ms for f in fr if f.phase == 0]))
        last = float(np.median([f.trigger_time_ms for f in fr if f.phase == n - 1]))
        rr = pydicom.dcmread(d / cine / fr[0].file_name, stop_before_pixels=True).get("NominalInterval")
        ed, es = s["expert_ed_frame"], s["expert_es_frame"]
        contoured = sorted({t for _, t in endo})
        print(f"| {name} | {n} | {rr} | {first:.0f} / {last:.0f} | {n * (last - first) / (n - 1):.0f} | "
              f"{', '.join(map(str, contoured))} | {ed} / {es} |")
        rows.append((name, n, ed, es, seg.ed_frame, seg.es_frame, cs.volume_curve_ml(seg.blood, seg.spacing_mm),
                     expert_volume_around(s["image"], endo, ed), expert_volume_around(s["image"], endo, es)))
    print("\nThe frame each rule picks (expert ED / ES in the first column):\n")
    print("| patient | expert ED / ES | R-wave (first frame) | last frame | largest / smallest automatic volume "
          "| expert contours carried to ±3 frames: largest / smallest | volume at expert ED / largest, "
          "ES / smallest: automatic; carried |")
    print("|---|---|---:|---:|---|---|---|")
    for name, n, ed, es, a_ed, a_es, curve, around_ed, around_es in rows:
        c_ed, c_es = max(around_ed, key=around_ed.get), min(around_es, key=around_es.get)
        print(f"| {name} | {ed} / {es} | 0 | {n - 1} | {a_ed} / {a_es} | {c_ed} / {c_es} | "
              f"{curve[ed] / curve[a_ed]:.3f}, {curve[es] / curve[a_es]:.3f}; "
              f"{1 / around_ed[c_ed]:.3f}, {1 / around_es[c_es]:.3f} |")
    print("\nAutomatic whole-ventricle volume curves (ml, frames 0..n-1):\n")
    for name, n, ed, es, _, _, curve, _, _ in rows:
        print(f"- {name}: " + " ".join(f"{v:.0f}" for v in curve))
    print("\nExpert contours carried to the neighbouring frames (volume relative to the expert frame):\n")
    for name, n, ed, es, _, _, _, around_ed, around_es in rows:
        for label, around in (("ED", around_ed), ("ES", around_es)):
            print(f"- {name} {label}: " + ", ".join(f"{t}: {v:.3f}" for t, v in around.items()))


def speed(repeat: int) -> None:
    sp = synthetic_patient(DEFAULT_PARAMS.with_(**TRUTH), seed=0, noise=False)
    rows = []

    s = Circulation()
    x = s.initial_state(DEFAULT_PARAMS)
    w, c, _ = timed(lambda: s._cycle(x, DEFAULT_PARAMS), repeat * 5)
    rows.append(("one cardiac cycle (RK4, 200 steps)", w, c, "1 cycle"))

    w, c, r = timed(lambda: Circulation().steady_state(DEFAULT_PARAMS), repeat)
    rows.append(("steady state, cold start", w, c, f"{r.cycles} cycles"))

    warm = Circulation()
    warm.steady_state(DEFAULT_PARAMS)
    step = iter(range(1, 1000))

    def nudged():  # every call a new R_sys, alternately 5 % above and below the last one
        k = next(step)
        f = 1.05 if k % 2 else 1 / 1.05
        return warm.steady_state(DEFAULT_PARAMS.with_(r_sys_mmhg_s_ml=DEFAULT_PARAMS.r_sys_mmhg_s_ml * f))
    w, c, r = timed(nudged, repeat)
    rows.append(("steady state, warm start (R_sys changed by 5 %)", w, c, f"{r.cycles} cycles"))

    def cal(full):
        if full:
            return calibrate(sp["edv_ml"], sp["esv_ml"], sp["sbp"], sp["dbp"], sp["hr"])
        return calibrate(sp["edv_ml"], sp["esv_ml"], hr_bpm=sp["hr"])

    for full, label in ((True, "calibration EDV+ESV+SBP+DBP (4 params) + identifiability"),
                        (False, "calibration EDV+ESV (2 params) + identifiability")):
        w, c, r = timed(lambda: cal(full), repeat)
        rows.append((label, w, c, f"{r.n_model_evaluations} model evaluations, {r.n_cycles} cycles"))

    w, c, r = timed(lambda: simulate_arms(DEFAULT_PARAMS, DEFAULT_ARMS, "Poor Metabolizer"), repeat)
    rows.append((f"{len(DEFAULT_ARMS)} arms x trough/peak (PK 7 days + 8 steady states)", w, c,
                 f"{len(r['table'])} rows"))

    print(_machine())
    print(f"load average at end: {os.getloadavg()[0]:.2f}\n")
    print("| case | wall s (best) | CPU s (best) | work |")
    print("|---|---:|---:|---|")
    for label, w, c, note in rows:
        print(f"| {label} | {w:.4f} | {c:.4f} | {note} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("segmentation", "loo", "convention", "frames", "speed", "all"), default="all")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    if args.part in ("segmentation", "all"):
        segmentation(args.data)
    if args.part in ("loo", "all"):
        loo(args.data)
    if args.part in ("convention", "all"):
        convention(args.data)
    if args.part in ("frames", "all"):
        frames(args.data)
    if args.part in ("speed", "all"):
        speed(args.repeat)


if __name__ == "__main__":
    main()
