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

:func:`expert_volume_around` carries the expert contours of one phase to the neighbouring
phases by deformable registration, so that the expert's own convention gives a volume at
frames the expert did not contour (used to check how the experts chose ED and ES).
:func:`contour_edge_offsets` measures where an expert contour lies relative to the
blood-myocardium edge of the image (a blurred step fitted across the contour).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi
from scipy.optimize import least_squares
from scipy.special import erfc

from twinflow.io.contours import dicom_slice_phase_index, read_polygons_per_image
from twinflow.io.imaging import read_image_with_info
from twinflow.segment import cardiac as cs

__all__ = ["evaluate_patient", "cyclic_frame_distance", "carry_mask", "expert_volume_around", "contour_edge_offsets"]


def cyclic_frame_distance(a: int, b: int, n: int) -> int:
    """Distance between two frame indices of a cyclic cine with ``n`` frames."""
    d = (int(a) - int(b)) % n
    return min(d, n - d)


def evaluate_patient(cine_dir: str | Path, contour_dir: str | Path, *, patient: str | None = None) -> dict[str, Any]:
    """Segment one cine and score it against the expert contours in ``contour_dir``
    (``i-contours/`` required, ``o-contours/`` optional).  Times in seconds.  Besides the
    scores, the result holds the ``segmentation``, the [T, Z, R, C] ``image``, the rasterised
    ``expert_endo`` masks keyed by (slice, phase) and the ``dicom_frames`` of the cine."""
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
        "image": arr,
        "expert_endo": endo,
        "dicom_frames": frames,
    })
    return score


def carry_mask(source: np.ndarray, target: np.ndarray, mask: np.ndarray, *, margin_px: int = 16,
               iterations: int = 80, smoothing_px: float = 1.5) -> float:
    """Area (pixels, fractional) of ``mask`` drawn on image ``source`` once carried onto image
    ``target`` of the same slice by 2D symmetric-forces demons registration (both images in
    one intensity scale, e.g. two phases of one cine).  Only a box around the mask is registered."""
    if not mask.any():
        return 0.0
    rows, cols = np.nonzero(mask)
    r0, r1 = max(rows.min() - margin_px, 0), min(rows.max() + margin_px + 1, mask.shape[0])
    c0, c1 = max(cols.min() - margin_px, 0), min(cols.max() + margin_px + 1, mask.shape[1])
    box = (slice(r0, r1), slice(c0, c1))
    fixed = sitk.GetImageFromArray(np.ascontiguousarray(target[box], dtype=np.float32))
    moving = sitk.GetImageFromArray(np.ascontiguousarray(source[box], dtype=np.float32))
    demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    demons.SetNumberOfIterations(iterations)
    demons.SetStandardDeviations(smoothing_px)
    field = demons.Execute(fixed, moving)
    transform = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    carried = sitk.Resample(sitk.GetImageFromArray(mask[box].astype(np.float32)), fixed, transform,
                            sitk.sitkLinear, 0.0)
    return float(sitk.GetArrayFromImage(carried).sum())


def expert_volume_around(image: np.ndarray, endo: Mapping[tuple[int, int], np.ndarray], phase: int, *,
                         reach: int = 3) -> dict[int, float]:
    """Expert volume at the phases ``phase - reach .. phase + reach`` (cyclic) relative to its
    volume at ``phase``: every expert contour of ``phase`` carried to each neighbouring phase
    of its slice (:func:`carry_mask`), areas summed over the slices.  ``image`` is [T, Z, R, C]."""
    n = image.shape[0]
    slices = sorted(z for z, t in endo if t == phase)
    if not slices:
        raise ValueError(f"no expert contour at phase {phase}")
    ref = sum(float(endo[(z, phase)].sum()) for z in slices)
    out = {}
    for k in range(-reach, reach + 1):
        t = (phase + k) % n
        area = ref if t == phase else sum(carry_mask(image[phase, z], image[t, z], endo[(z, phase)]) for z in slices)
        out[t] = area / ref
    return out


def _ray_polygon_distance(polygon: np.ndarray, centre: tuple[float, float], angle: float) -> float | None:
    """Largest distance from ``centre`` (row, col) along the ray at ``angle`` to a polygon edge
    (vertices ``(x = column, y = row)``), or None when the ray misses the polygon."""
    dy, dx = math.sin(angle), math.cos(angle)
    p, q = polygon, np.roll(polygon, -1, axis=0)
    ex, ey = q[:, 0] - p[:, 0], q[:, 1] - p[:, 1]
    den = dx * ey - dy * ex
    ok = np.abs(den) > 1e-12
    wx, wy = p[:, 0] - centre[1], p[:, 1] - centre[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (wx * ey - wy * ex) / den
        u = (wx * dy - wy * dx) / den
    hit = ok & (t > 0) & (u >= 0) & (u <= 1)
    return float(t[hit].max()) if hit.any() else None


def contour_edge_offsets(image: np.ndarray, polygon: np.ndarray, *, n_rays: int = 48,
                         half_width_px: float = 5.0) -> np.ndarray:
    """Where an endocardial contour lies relative to the image's blood-myocardium edge.

    On ``n_rays`` rays from the contour's centroid the (unsmoothed) profile within
    ``half_width_px`` of the contour is fitted by a blurred step
    ``wall + (blood - wall) / 2 * erfc((r - edge) / (sqrt(2) sigma))``.  Returns an array
    ``(n, 2)``: the contour's distance outside the fitted edge (px; the edge is the
    half-maximum) and the edge width sigma (px), for the rays where the fit is a step from
    bright to dark (blood > wall, residual < 25 % of the step).  ``polygon`` is (x = column,
    y = row) in pixels, as the contour files give it.
    """
    poly = np.asarray(polygon, dtype=float)
    centre = (float(poly[:, 1].mean()), float(poly[:, 0].mean()))
    img = np.asarray(image, dtype=float)
    rows = []
    for k in range(n_rays):
        a = 2 * math.pi * k / n_rays
        r_c = _ray_polygon_distance(poly, centre, a)
        if r_c is None:
            continue
        rs = np.arange(max(r_c - half_width_px, 0.0), r_c + half_width_px, 0.25)
        prof = ndi.map_coordinates(img, [centre[0] + rs * math.sin(a), centre[1] + rs * math.cos(a)],
                                   order=1, mode="nearest")

        def resid(x):
            edge, sigma, blood, wall = x
            return wall + (blood - wall) * 0.5 * erfc((rs - edge) / (math.sqrt(2) * sigma)) - prof

        fit = least_squares(resid, [r_c, 1.0, prof[0], prof[-1]],
                            bounds=([rs[0], 0.3, -np.inf, -np.inf], [rs[-1], 5.0, np.inf, np.inf]))
        edge, sigma, blood, wall = fit.x
        if blood <= wall or np.sqrt(np.mean(fit.fun ** 2)) > 0.25 * (blood - wall):
            continue
        rows.append((r_c - edge, sigma))
    return np.asarray(rows, dtype=float).reshape(-1, 2)
