"""Tumour segmentation accuracy and speed on the real cases in ../shared/data (and on
known-answer cases built from them).

    python benchmarks/segmentation.py                    # real cases: one Markdown table
    python benchmarks/segmentation.py --small --breast   # + small lesions in brain1, breast phantom
    python benchmarks/segmentation.py --loo              # leave-one-out over the glioma constants
    python benchmarks/segmentation.py --no-n4            # without N4 bias-field correction

Cases (read from ../shared/data or $TWINFLOW_SHARED_DATA, never copied):

* ``brats_2013_pat000{1,2,3}_1``: FLAIR + T1c (intensity-normalised: mean subtracted, divided
  by the SD; negative values), the given brain mask, no pre-contrast T1; fully automatic.
  Scored against the expert label (BraTS 2013: 1 necrosis, 2 oedema, 3 non-enhancing tumour,
  4 enhancing) as whole tumour (1-4), tumour core (1, 3, 4) and enhancing (4).
* ``brain1_roi`` / ``brain1_auto``: pyradiomics brain1, a single T1post NRRD
  (0.78 x 0.78 x 6.5 mm), no brain mask; ROI = expert box + 10 mm, and fully automatic.
  The expert label is the whole tumour.
* ``--small``: spherical enhancing lesions (+60 %, partial volume of the 6.5 mm slices)
  inserted into brain1's healthy hemisphere at four sites and four diameters
  (:func:`twinflow.segment.synthetic.insert_lesion`); ROI = lesion box + 10 mm.
* ``--breast``: :func:`twinflow.segment.synthetic.breast_phantom` (fat-suppressed DCE,
  rim-enhancing tumour), with and without organ mask / pre-contrast / ROI.

``--loo``: the glioma method's three tunable constants (NORMAL_PERCENTILE, CORE_CLOSE_MM,
RIM_MM) on a 3 x 3 x 3 grid; for each BraTS case the setting that is best on the other two
(mean of the three Dice) is applied to it.  Times are wall seconds of ``segment_tumour``;
``--threads 1`` limits ITK to one thread (numpy/scipy parts are single-threaded).
Nothing is asserted here: tests/test_segment_oncology.py does.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from twinflow.errors import InputError  # noqa: E402
from twinflow.io.imaging import canonicalise, read_image  # noqa: E402
from twinflow.segment import glioma  # noqa: E402
from twinflow.segment.oncology import convert_label_image, roi_from_mask, score, segment_tumour  # noqa: E402
from twinflow.segment.synthetic import breast_phantom, insert_lesion  # noqa: E402

BRATS = ("brats_2013_pat0001_1", "brats_2013_pat0002_1", "brats_2013_pat0003_1")
CASES = BRATS + ("brain1_roi", "brain1_auto")
#: brain1 sites (x, y, z voxel index of the canonical image) in the healthy hemisphere, and
#: their depth below the estimated brain surface
SMALL_SITES = (((210, 134, 15), "cortex, 5 mm deep"), ((186, 126, 16), "white matter, 25 mm"),
               ((202, 128, 14), "12 mm deep"), ((204, 133, 18), "8 mm, under a sulcus"))
SMALL_DIAMETERS_MM = (4.0, 6.0, 8.0, 12.0)
LOO_GRID = {"NORMAL_PERCENTILE": (95.0, 98.0, 99.0), "CORE_CLOSE_MM": (2.0, 3.0, 5.0), "RIM_MM": (3.0, 5.0, 8.0)}


def shared_data() -> Path:
    return Path(os.environ.get("TWINFLOW_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


def load_brats(name: str):
    p = shared_data() / "brats" / name
    images = {"FLAIR": read_image(p / "Flair_subtrMeanDivStd.nii.gz"), "T1c": read_image(p / "T1c_subtrMeanDivStd.nii.gz")}
    return images, read_image(p / "brainmask.nii.gz"), convert_label_image(read_image(p / "OTMultiClass.nii.gz"), "brats2013")


def load_brain1():
    d = shared_data() / "pyradiomics"
    return canonicalise(read_image(d / "brain1_image.nrrd")), canonicalise(read_image(d / "brain1_label.nrrd"))


def timed(**kw):
    t = time.perf_counter()
    try:
        res = segment_tumour(**kw)
    except InputError as exc:
        return None, time.perf_counter() - t, str(exc)
    return res, time.perf_counter() - t, None


def _f(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def row(name: str, res, seconds: float, expert, whole_only: bool, error: str | None = None) -> str:
    if res is None:
        return f"| {name} | named error: {error} | | | | | | {seconds:.1f} |"
    s = score(res.automatic, expert)
    wt, tc, en = s["whole_tumour"], s["tumour_core"], s["enhancing"]
    if whole_only:
        cells = [_f(wt["dice"]), "-", "-", f"{wt['auto_ml']:.2f} / {wt['expert_ml']:.2f}", "-", "-"]
    else:
        cells = [_f(wt["dice"]), _f(tc["dice"]), _f(en["dice"]), f"{wt['auto_ml']:.1f} / {wt['expert_ml']:.1f}",
                 f"{tc['auto_ml']:.1f} / {tc['expert_ml']:.1f}", f"{en['auto_ml']:.1f} / {en['expert_ml']:.1f}"]
    return f"| {name} | " + " | ".join(cells) + f" | {seconds:.1f} |"


HEADER = ("| case | WT Dice | core Dice | enh Dice | WT auto / expert (ml) | core auto / expert (ml) | "
          "enh auto / expert (ml) | time (s) |\n|---|---|---|---|---|---|---|---|")


def real_cases(names, n4: bool) -> None:
    print(HEADER)
    for name in names:
        if name in BRATS:
            images, mask, expert = load_brats(name)
            res, sec, err = timed(images=images, brain_mask=mask, bias_correction=n4)
        else:
            img, expert = load_brain1()
            roi = roi_from_mask(expert, margin_mm=10.0) if name == "brain1_roi" else None
            res, sec, err = timed(images={"T1post": img}, roi_lps_mm=roi, bias_correction=n4)
        print(row(name, res, sec, expert, name.startswith("brain1"), err), flush=True)


def small_lesions() -> None:
    img, _ = load_brain1()
    print("\nSmall enhancing lesions inserted into brain1 (ROI = lesion box + 10 mm, no mask)\n")
    print("| site | diameter (mm) | truth (ml) | auto (ml) | Dice | time (s) |\n|---|---|---|---|---|---|")
    for (idx, site), diam in itertools.product(SMALL_SITES, SMALL_DIAMETERS_MM):
        im, truth = insert_lesion(img, img.TransformIndexToPhysicalPoint(idx), diam, enhancement=0.6)
        res, sec, err = timed(images={"T1post": im}, roi_lps_mm=roi_from_mask(truth, 10.0))
        tml = float(sitk.GetArrayViewFromImage(truth).sum()) * float(np.prod(im.GetSpacing())) / 1000
        if res is None:
            print(f"| {site} | {diam:g} | {tml:.3f} | named error | - | {sec:.1f} |  <!-- {err} -->")
            continue
        s = score(res.automatic, truth)["whole_tumour"]
        print(f"| {site} | {diam:g} | {tml:.3f} | {s['auto_ml']:.3f} | {_f(s['dice'])} | {sec:.1f} |", flush=True)


def breast() -> None:
    bc = breast_phantom()
    print("\nBreast DCE phantom (3.1 ml rim-enhancing tumour)\n")
    print("| inputs | mask | roi | Dice | auto / truth (ml) | time (s) |\n|---|---|---|---|---|---|")
    for series, mask, roi in itertools.product(("T1post", "T1post + T1"), ("none", "organ_mask"), ("roi", "none")):
        images = {"T1post": bc.t1post} | ({"T1": bc.t1} if "T1" in series.split(" + ")[1:] else {})
        kw = {"organ_mask": bc.organ_mask} if mask == "organ_mask" else {}
        res, sec, err = timed(images=images, roi_lps_mm=bc.roi_lps_mm if roi == "roi" else None, **kw)
        if res is None:
            print(f"| {series} | {mask} | {roi} | named error | - | {sec:.1f} |  <!-- {err} -->")
            continue
        s = score(res.automatic, bc.truth)["whole_tumour"]
        print(f"| {series} | {mask} | {roi} | {_f(s['dice'])} | {s['auto_ml']:.2f} / {s['expert_ml']:.2f} | {sec:.1f} |",
              flush=True)


def leave_one_out() -> None:
    data = {n: load_brats(n) for n in BRATS}
    keys = sorted(LOO_GRID)
    saved = {k: getattr(glioma, k) for k in keys}
    table: dict[tuple, dict[str, tuple[float, float, float]]] = {}
    try:
        for values in itertools.product(*(LOO_GRID[k] for k in keys)):
            for k, v in zip(keys, values):
                setattr(glioma, k, v)
            for n, (images, mask, expert) in data.items():
                s = score(segment_tumour(images, brain_mask=mask).automatic, expert)
                table.setdefault(values, {})[n] = tuple(s[r]["dice"] or 0.0 for r in ("whole_tumour", "tumour_core", "enhancing"))
    finally:
        for k, v in saved.items():
            setattr(glioma, k, v)
    print("\nLeave-one-out over " + ", ".join(f"{k} {LOO_GRID[k]}" for k in keys) + "\n")
    print("| held-out case | chosen on the other two | WT | core | enh | shipped setting: WT / core / enh |")
    print("|---|---|---|---|---|---|")
    shipped = tuple(saved[k] for k in keys)
    for held in BRATS:
        others = [n for n in BRATS if n != held]
        best = max(table, key=lambda v: (np.mean([np.mean(table[v][n]) for n in others]), v == shipped))
        d = table[best][held]
        ds = table[shipped][held]
        print(f"| {held} | " + ", ".join(f"{k}={v:g}" for k, v in zip(keys, best))
              + f" | {d[0]:.3f} | {d[1]:.3f} | {d[2]:.3f} | {ds[0]:.3f} / {ds[1]:.3f} / {ds[2]:.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    ap.add_argument("--no-n4", action="store_true", help="skip N4 bias-field correction")
    ap.add_argument("--small", action="store_true", help="small lesions inserted into brain1")
    ap.add_argument("--breast", action="store_true", help="breast DCE phantom")
    ap.add_argument("--loo", action="store_true", help="leave-one-out over the glioma constants (~4 min)")
    ap.add_argument("--threads", type=int, default=0, help="ITK threads (0 = ITK's default)")
    args = ap.parse_args()
    if args.threads:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, SimpleITK {sitk.Version.VersionString()}, numpy {np.__version__}, "
          f"ITK threads {sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}\n")
    real_cases(args.cases, n4=not args.no_n4)
    if args.small:
        small_lesions()
    if args.breast:
        breast()
    if args.loo:
        leave_one_out()


if __name__ == "__main__":
    main()
