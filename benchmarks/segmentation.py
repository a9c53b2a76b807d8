"""Tumour segmentation accuracy and speed on the real cases in ../shared/data.

    python benchmarks/segmentation.py            # every case, one table
    python benchmarks/segmentation.py --cases brats_2013_pat0001_1 brain1_roi

Cases (all read from ../shared/data or $TWINFLOW_SHARED_DATA, never copied):

* ``brats_2013_pat000{1,2,3}_1``: FLAIR + T1c (intensity-normalised: mean subtracted, divided
  by the SD), the given brain mask, no pre-contrast T1; fully automatic.  Scored against the
  expert label (BraTS 2013: 1 necrosis, 2 oedema, 3 non-enhancing tumour, 4 enhancing) as
  whole tumour (1-4), tumour core (1, 3, 4) and enhancing (4).
* ``brain1_roi`` / ``brain1_auto``: pyradiomics brain1, a single T1post NRRD
  (0.78 x 0.78 x 6.5 mm), no brain mask; ROI = expert box + 10 mm, and fully automatic.
  The expert label is the whole tumour.

Prints a Markdown table: Dice per region, volumes, wall time (single thread for numpy/ITK
where the libraries honour it).  Nothing is asserted: tests/test_segment_oncology.py does.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import SimpleITK as sitk  # noqa: E402

from twinflow.io.imaging import canonicalise, read_image  # noqa: E402
from twinflow.segment.oncology import convert_label_image, roi_from_mask, score, segment_tumour  # noqa: E402

BRATS = ("brats_2013_pat0001_1", "brats_2013_pat0002_1", "brats_2013_pat0003_1")
CASES = BRATS + ("brain1_roi", "brain1_auto")


def shared_data() -> Path:
    return Path(os.environ.get("TWINFLOW_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


def run_case(name: str, n4: bool = True) -> dict:
    d = shared_data()
    if name in BRATS:
        p = d / "brats" / name
        images = {"FLAIR": read_image(p / "Flair_subtrMeanDivStd.nii.gz"), "T1post": read_image(p / "T1c_subtrMeanDivStd.nii.gz")}
        mask = read_image(p / "brainmask.nii.gz")
        expert = convert_label_image(read_image(p / "OTMultiClass.nii.gz"), "brats2013")
        t = time.perf_counter()
        res = segment_tumour(images, brain_mask=mask, bias_correction=n4)
    else:
        img = canonicalise(read_image(d / "pyradiomics" / "brain1_image.nrrd"))
        expert = canonicalise(read_image(d / "pyradiomics" / "brain1_label.nrrd"))
        roi = roi_from_mask(expert, margin_mm=10.0) if name == "brain1_roi" else None
        t = time.perf_counter()
        res = segment_tumour({"T1post": img}, roi_lps_mm=roi, bias_correction=n4)
    seconds = time.perf_counter() - t
    s = score(res.automatic, expert)
    return {"case": name, "seconds": seconds, "scores": s, "whole_only": name.startswith("brain1")}


def _f(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    ap.add_argument("--no-n4", action="store_true", help="skip N4 bias-field correction")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"SimpleITK {sitk.Version.VersionString()}")
    print()
    print("| case | WT Dice | core Dice | enh Dice | WT auto / expert (ml) | core auto / expert (ml) | enh auto / expert (ml) | time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        r = run_case(name, n4=not args.no_n4)
        s = r["scores"]
        wt, tc, en = s["whole_tumour"], s["tumour_core"], s["enhancing"]
        if r["whole_only"]:
            row = [_f(wt["dice"]), "-", "-", f"{wt['auto_ml']:.1f} / {wt['expert_ml']:.1f}", "-", "-"]
        else:
            row = [_f(wt["dice"]), _f(tc["dice"]), _f(en["dice"]), f"{wt['auto_ml']:.1f} / {wt['expert_ml']:.1f}",
                   f"{tc['auto_ml']:.1f} / {tc['expert_ml']:.1f}", f"{en['auto_ml']:.1f} / {en['expert_ml']:.1f}"]
        print(f"| {name} | " + " | ".join(row) + f" | {r['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
