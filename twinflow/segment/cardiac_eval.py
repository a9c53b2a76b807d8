"""Automatic LV segmentation scored against expert contours, one patient at a time.

Shared by ``benchmarks/cardiac.py`` (per-patient table) and the tests on the Sunnybrook
patients in ``../shared/data``: read the cine (DICOM directory), segment it with the one
fixed parameter set, rasterise the expert i-/o-contours onto the (slice, phase) grid through
the DICOM geometry, and compare

* per contoured image: endocardial Dice (and epicardial Dice where an o-contour exists);
* matched slices: EDV / ESV / EF by summation of discs over the slices the expert contoured
  at both ED and ES, expert against automatic (automatic frames and expert frames);
* whole ventricle: the automatic EDV / ESV / EF over every slice where the LV was found
  (there is no expert value for it: the experts contour a subset of the slices);
* the QC record of :func:`twinflow.segment.cardiac_qc.qc_record` (per-slice confidence, flags).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from twinflow.io.contours import dicom_slice_phase_index, read_polygons_per_image
from twinflow.io.imaging import read_image_with_info
from twinflow.segment import cardiac as cs

__all__ = ["evaluate_patient", "cyclic_frame_distance"]


def cyclic_frame_distance(a: int, b: int, n: int) -> int:
    """Distance between two frame indices of a cyclic cine with ``n`` frames."""
    d = (int(a) - int(b)) % n
    return min(d, n - d)


def evaluate_patient(cine_dir: str | Path, contour_dir: str | Path, *, patient: str | None = None) -> dict[str, Any]:
    """Segment one cine and score it against the expert contours in ``contour_dir``
    (``i-contours/`` required, ``o-contours/`` optional).  Times in seconds."""
    cine_dir, contour_dir = Path(cine_dir), Path(contour_dir)
    t0 = time.perf_counter()
    img, _ = read_image_with_info(cine_dir, patient=patient)
    frames = dicom_slice_phase_index(cine_dir, patient=patient)
    t1 = time.perf_counter()
    seg = cs.segment_lv(img)
    t2 = time.perf_counter()
    arr = cs.cine_array(img, seg.slice_axis)
    shape = arr.shape[2:]
    endo = cs.expert_masks(read_polygons_per_image(contour_dir / "i-contours", patient=patient), frames, shape)
    epi = None
    if (contour_dir / "o-contours").is_dir():
        epi = cs.expert_masks(read_polygons_per_image(contour_dir / "o-contours", patient=patient), frames, shape)
    cs.add_myocardium(seg, arr, sorted({t for _, t in endo} | ({t for _, t in epi} if epi else set())))
    numbers = {(f.slice, f.phase): f.image_number for f in frames}
    score = cs.score_against_contours(seg, endo, epi, image_numbers=numbers)
    whole = cs.lv_function(seg)
    from twinflow.segment.cardiac_qc import qc_record

    qc = qc_record(seg, arr, whole)
    t3 = time.perf_counter()
    n = seg.n_phases
    score.update({
        "n_slices": seg.n_slices,
        "n_phases": n,
        "slice_spacing_mm": seg.spacing_mm[2],
        "whole_ventricle": whole,
        "qc": qc,
        "ed_frame_distance": cyclic_frame_distance(seg.ed_frame, score["expert_ed_frame"], n),
        "es_frame_distance": cyclic_frame_distance(seg.es_frame, score["expert_es_frame"], n),
        "min_dice_endo": min(p["dice_endo"] for p in score["per_image"]),
        "notes": list(seg.notes),
        "seconds": {"read": t1 - t0, "segment": t2 - t1, "score": t3 - t2},
        "segmentation": seg,
    })
    return score
