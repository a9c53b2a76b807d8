"""Left-ventricular segmentation and function from a short-axis cine series (no learned weights).

Input is a 4D image (x, y, slice, phase) as :func:`twinflow.io.imaging.read_image_with_info`
returns it for a DICOM cine directory (native order: rows/columns of the DICOM pixel
array, slices ordered by ImagePositionPatient on the slice normal, phases by
TriggerTime) or a 4D NIfTI.  Internally the data are an array ``[phase, slice, row, col]``;
for a canonical (RAS) image the slice axis is the coarsest axis (see :func:`twinflow.io.imaging.slice_axis`).

Method (all thresholds relative to image statistics, all lengths in mm)
----------------------------------------------------------------------
1. *Localisation.*  In the central half of the stack, bright components of the time-averaged
   image at several intensity levels (percentiles of the central field of view, so that no
   single threshold has to separate blood from fat on every scanner) are scored by
   roundness x solidity x wall coverage x sqrt(cardiac-frequency motion at the border) x a
   weak prior for the centre of the field of view; each candidate adds the best score of a
   nearby candidate in every other central slice (the LV is a tube through the stack).
2. *Blood pool* per (slice, phase), given a seed and a prior mask: Otsu within a disc around
   the seed, then re-thresholded at least midway between the blood level (median of the
   pool) and the wall level (median of a 1.5-5 mm ring outside it), which is what separates
   blood from myocardium when the field of view also holds lung and air; openings of
   1.5 / 3 / 4.5 mm until the pool is <= 1.3 x the prior (cuts bridges to the RV / outflow
   tract), dilated back inside the threshold; kept within 4 mm (phase) / 6 mm (slice) of the
   prior; holes filled and convex hull taken.  The endocardium is then placed at the *local*
   half-maximum: on rays from the pool centre, the border moves out of the hull while the
   profile stays above (blood level + darkest point of the wall within 5 mm) / 2.  Papillary
   muscles and trabeculae that the hull bridges stay in the cavity, the convention of the
   Sunnybrook experts; no boundary offset is fitted to any patient
   (docs/cardiac-segmentation.md).  The start slice is tracked over all phases;
   every other slice, going towards apex and base, starts at the neighbouring slice's
   smallest pool and is tracked over the phases with the previous phase as prior, kept
   within 6 mm of the neighbouring slice at the same phase.
3. *Presence.*  A slice is accepted when, as the median over phases, at least 75 % of the
   rays from the pool centroid cross a wall (>= 4 mm darker than midway between blood and
   rim, starting within 6 mm of the border) and the pool is >= 8 % of the start slice's
   area; propagation stops at the first rejected slice.  At the base (the end of the stack
   with the larger pools) a slice stays only while its pool area over the cycle correlates
   (r >= 0.5) with the volume of the slices already accepted: atria fill while the ventricle
   empties and the aortic root widens in systole.
4. *Myocardium* by a radial search: along 90 rays from the pool centroid, the wall ends
   where the profile leaves the myocardial intensity band (bright: fat / RV blood; dark:
   lung / air); per-ray thicknesses are median-filtered over angle and clipped to
   [0.5, 2] x their median.
5. *ED / ES* = phase of largest / smallest LV blood-pool volume of the whole ventricle (the
   SCMR convention).  Volumes by summation of discs: area x true slice spacing (the distance
   between slice positions along the normal, never SliceLocation).  LV mass = myocardial
   volume at ED x 1.05 g/ml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from twinflow.io.contours import DicomFrame, rasterise_polygon
from twinflow.io.imaging import slice_axis as acquisition_slice_axis

__all__ = [
    "CardiacSegmentation",
    "segment_lv",
    "lv_function",
    "volume_curve_ml",
    "dice",
    "expert_masks",
    "score_against_contours",
    "apply_expert_contours",
    "cardiac_function_record",
    "overlay_png",
    "cine_array",
    "add_myocardium",
    "MYOCARDIUM_DENSITY_G_ML",
]

#: myocardial density used for LV mass
MYOCARDIUM_DENSITY_G_ML = 1.05

# --- constants (lengths in mm, the rest dimensionless / relative to image statistics)
_LOC_FOV_FRACTION = 0.35  # LV candidates are searched within this fraction of the FOV from its centre
_LOC_PRIOR_FRACTION = 0.25  # ... and weighted by exp(-(distance / (this x FOV))^2)
_LOC_PERCENTILES = (75, 80, 85, 90, 94, 97)  # intensity levels tried for the time-averaged image
_LOC_OPEN_MM = 2.0  # opening that cuts thin bridges between bright components
_LOC_TUBE_MM = 15.0  # candidates in other slices closer than this support each other
_MIN_POOL_AREA_MM2 = 300.0  # smallest (time-averaged) blood pool accepted in a central slice
_MAX_POOL_AREA_MM2 = 8000.0  # largest (~10 cm diameter)
_OPEN_RADII_MM = (1.5, 3.0, 4.5)  # tried in turn until the pool is plausible w.r.t. its prior
_GROWTH_OPEN = 1.3  # a pool larger than this x its prior triggers a larger opening
_MARGIN_PHASE_MM = 4.0  # pool stays within this distance of the previous phase's pool
_MARGIN_SLICE_MM = 6.0  # ... of the neighbouring slice's pool
_ROI_FACTOR = 1.8  # ROI radius = factor x equivalent radius of the prior mask + margin
_ROI_MARGIN_MM = 12.0
_APEX_AREA_FRACTION = 0.08  # below this fraction of the start slice's area -> apex reached
_BASE_MIN_CORR = 0.5  # a basal slice's pool area must follow the ventricular volume over the cycle
_RING_MIN_COVERAGE = 0.75  # median over phases of the fraction of the pool rimmed by a wall
_RING_MIN_WALL_MM = 4.0  # a wall is at least this thick (LV myocardium; atrial walls are thinner)
_RING_SEARCH_MM = 6.0  # ... and starts within this distance of the pool border
_WALL_RING_MM = (1.5, 5.0)  # the wall level is measured in this ring outside the mid-level pool
_WALL_PERCENTILE = 50  # ... as this percentile
_MID_FRACTION = 0.5  # the pool is thresholded at least at wall + this x (blood - wall)
_LEVEL_PASSES = 1  # re-thresholds after measuring blood and wall levels around the first pool
_LOCAL_WALL_MM = 5.0  # the local wall level of a border ray: its darkest point within this distance outside the pool
_BORDER_RAYS = 120  # rays on which the endocardium is placed at the local half-maximum
_BORDER_SMOOTH = 2  # ... radii median-filtered over +- this many rays
_N_RAYS = 90
_MAX_WALL_MM = 25.0
_MIN_WALL_MM = 2.0


@dataclass
class CardiacSegmentation:
    """Masks ``[phase, slice, row, col]`` and the geometry needed to measure them."""

    blood: np.ndarray  # bool [T, Z, R, C]
    myocardium: np.ndarray  # bool [T, Z, R, C] (filled at ED and ES; empty elsewhere)
    spacing_mm: tuple[float, float, float]  # (row, col, slice) spacing; slice = true distance
    ed_frame: int
    es_frame: int
    frame_interval_ms: float | None
    slice_axis: int  # axis of the input image (0..2, ITK order) holding the slices
    present: np.ndarray  # bool [T, Z]: LV blood pool found
    start_slice: int
    notes: list[str] = field(default_factory=list)

    @property
    def n_phases(self) -> int:
        return int(self.blood.shape[0])

    @property
    def n_slices(self) -> int:
        return int(self.blood.shape[1])

    @property
    def voxel_ml(self) -> float:
        r, c, z = self.spacing_mm
        return r * c * z / 1000.0


# ----------------------------------------------------------------------------- helpers


def _to_tzrc(cine: sitk.Image, slice_axis: int | None) -> tuple[np.ndarray, tuple[float, float, float], int]:
    """4D image -> float32 array [T, Z, R, C] and spacing (row, col, slice)."""
    if cine.GetDimension() != 4:
        raise ValueError(f"expected a 4D cine image (x, y, slice, phase), got {cine.GetDimension()}D")
    sp = cine.GetSpacing()
    ax = acquisition_slice_axis(sp) if slice_axis is None else int(slice_axis)
    arr = sitk.GetArrayFromImage(cine).astype(np.float32)  # [t, z, y, x] in ITK axes 3,2,1,0
    np_axis = 3 - ax  # numpy axis of the slices
    inplane = [a for a in (1, 2, 3) if a != np_axis]  # remaining numpy axes, slowest first
    arr = np.transpose(arr, (0, np_axis, *inplane))
    sp_np = {1: sp[2], 2: sp[1], 3: sp[0]}
    return np.ascontiguousarray(arr), (float(sp_np[inplane[0]]), float(sp_np[inplane[1]]), float(sp_np[np_axis])), ax


def _disk(radius_px: float) -> np.ndarray:
    r = max(int(math.floor(radius_px)), 0)
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y) <= radius_px * radius_px + 1e-9


def _otsu(values: np.ndarray, bins: int = 128) -> float:
    v = values[np.isfinite(values)]
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 / w0[-1] - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1
    return float(centres[int(np.argmax(between))] + (edges[1] - edges[0]) / 2)


def _convex_hull(mask: np.ndarray) -> np.ndarray:
    """Filled convex hull of a 2D mask (pixel centres), via scipy's Qhull."""
    from scipy.spatial import ConvexHull, QhullError

    idx = np.argwhere(mask)
    if len(idx) < 3:
        return mask.copy()
    # hull of the pixel squares' corners so that thin masks keep their width
    corners = (idx[:, None, :] + np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])[None]).reshape(-1, 2)
    try:
        hull = ConvexHull(corners)
    except QhullError:
        return mask.copy()
    poly = corners[hull.vertices][:, ::-1]  # (x = col, y = row)
    return rasterise_polygon(poly, mask.shape) | mask


def _largest_overlap_component(cand: np.ndarray, prior: np.ndarray | None, seed: tuple[int, int]) -> np.ndarray:
    lab, n = ndi.label(cand)
    if n == 0:
        return np.zeros_like(cand)
    if prior is not None and prior.any():
        counts = np.bincount(lab[prior], minlength=n + 1)
        counts[0] = 0
        if counts.max() > 0:
            return lab == int(np.argmax(counts))
    r, c = seed
    if lab[r, c] > 0:
        return lab == lab[r, c]
    # nearest component to the seed
    dist = ndi.distance_transform_edt(lab == 0, return_indices=True)[1]
    k = lab[dist[0][r, c], dist[1][r, c]]
    return lab == k


def _eq_radius_mm(mask: np.ndarray, px_area_mm2: float) -> float:
    return math.sqrt(max(mask.sum(), 1) * px_area_mm2 / math.pi)


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    idx = np.argwhere(mask)
    return float(idx[:, 0].mean()), float(idx[:, 1].mean())


def _ray_profile(mask01: np.ndarray, img: np.ndarray, centre: tuple[float, float], angle: float,
                 rs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``mask01`` (a mask as float32 0/1, nearest) and ``img`` (linear) sampled along the ray
    from ``centre`` (row, col) at ``angle``, at radii ``rs`` (pixels), up to where the ray leaves
    the image.  The caller converts the mask once for all its rays."""
    rr, cc = centre[0] + rs * math.sin(angle), centre[1] + rs * math.cos(angle)
    ok = (rr >= 0) & (rr <= img.shape[0] - 1) & (cc >= 0) & (cc <= img.shape[1] - 1)
    coords = [rr[ok], cc[ok]]
    return ndi.map_coordinates(mask01, coords, order=0), ndi.map_coordinates(img, coords, order=1)


def _cyclic_median(values: np.ndarray, k: int) -> np.ndarray:
    """Median filter over +- ``k`` neighbours of a cyclic sequence (values per ray angle)."""
    if k <= 0:
        return values
    return ndi.median_filter(np.concatenate([values[-k:], values, values[:k]]), size=2 * k + 1)[k:-k]


def _ring_coverage(img: np.ndarray, pool: np.ndarray, px_mm: float, blood_level: float, dark_level: float) -> float:
    """Fraction of rays from the pool centroid that cross a wall: a run of at least
    ``_RING_MIN_WALL_MM`` darker than midway between blood and surroundings, starting
    within ``_RING_SEARCH_MM`` of the pool border (thin atrial walls / valve planes fail)."""
    cr, cc = _centroid(pool)
    n = 48
    step = 0.25
    rs = np.arange(0, (_RING_SEARCH_MM + 60.0) / px_mm, step)
    angles = np.arange(n) * 2 * np.pi / n
    rr = np.clip(cr + np.outer(np.sin(angles), rs), 0, img.shape[0] - 1)
    cc_ = np.clip(cc + np.outer(np.cos(angles), rs), 0, img.shape[1] - 1)
    inside = ndi.map_coordinates(pool.astype(np.float32), [rr.ravel(), cc_.ravel()], order=0).reshape(rr.shape)
    prof = ndi.map_coordinates(img, [rr.ravel(), cc_.ravel()], order=1).reshape(rr.shape)
    thr = 0.5 * (blood_level + dark_level)
    need = int(math.ceil(_RING_MIN_WALL_MM / px_mm / step))
    span = int(round((_RING_SEARCH_MM + _RING_MIN_WALL_MM) / px_mm / step))
    hits = 0
    for i in range(n):
        out = np.nonzero(inside[i] < 0.5)[0]
        if len(out) == 0:
            continue
        dark = prof[i, out[0] : out[0] + span] < thr
        if len(dark) >= need and np.convolve(dark.astype(int), np.ones(need, int), "valid").max() >= need:
            hits += 1
    return hits / n


# ---------------------------------------------------------------------------- locate


@dataclass
class _Candidate:
    slice: int
    centre: tuple[float, float]
    score: float
    area_mm2: float


def _shape_features(comp: np.ndarray, spacing: tuple[float, float, float]) -> tuple[np.ndarray, float, float]:
    """Filled component, roundness (minor / major axis) and solidity (area / convex hull area)."""
    filled = ndi.binary_fill_holes(comp)
    hull = _convex_hull(filled)
    solidity = float(filled.sum()) / max(int(hull.sum()), 1)
    idx = np.argwhere(filled).astype(float) * [spacing[0], spacing[1]]
    ev = np.sort(np.linalg.eigvalsh(np.cov(idx.T))) if len(idx) > 2 else np.array([0.0, 1.0])
    return filled, math.sqrt(max(ev[0], 1e-9) / max(ev[1], 1e-9)), solidity


def _locate_lv(arr: np.ndarray, spacing: tuple[float, float, float]) -> _Candidate:
    """Slice, centre and area of the LV blood pool in the middle of the stack.

    Candidates are bright components of the time-averaged image of each central slice at
    several intensity levels (percentiles of the central field of view), so that no single
    threshold has to separate blood from fat on every scanner.  Each is scored by roundness,
    solidity, the fraction of its border rimmed by a wall, the cardiac-frequency motion at
    its border (first temporal harmonic, relative to the slice's) and a weak prior that the
    heart is near the centre of the field of view (where a cardiac scan is planned).  The LV
    is a tube through the stack: a candidate adds the best score of a nearby candidate in
    every other central slice.
    """
    T, Z, R, C = arr.shape
    px = math.sqrt(spacing[0] * spacing[1])
    px_area = spacing[0] * spacing[1]
    h1 = np.abs(np.fft.rfft(arr, axis=0)[1]) / T if T > 2 else arr.std(axis=0)  # [Z, R, C]
    mean_img = arr.mean(axis=0)
    yy, xx = np.mgrid[0:R, 0:C]
    d_centre = np.hypot((yy - (R - 1) / 2) * spacing[0], (xx - (C - 1) / 2) * spacing[1])
    fov = min(R * spacing[0], C * spacing[1])
    central_fov = d_centre <= _LOC_FOV_FRACTION * fov
    z_lo, z_hi = int(round(0.25 * (Z - 1))), int(round(0.75 * (Z - 1)))
    central = list(range(z_lo, z_hi + 1)) or list(range(Z))
    cands: list[_Candidate] = []
    for z in central:
        im = ndi.gaussian_filter(mean_img[z], 0.7)
        hz = ndi.gaussian_filter(h1[z], 1.0)
        h_ref = float(np.percentile(hz[central_fov], 99)) or 1.0
        for q in _LOC_PERCENTILES:
            bright = ndi.binary_opening(im > np.percentile(im[central_fov], q), _disk(_LOC_OPEN_MM / px))
            lab, n = ndi.label(bright)
            for k in range(1, n + 1):
                comp = lab == k
                area = comp.sum() * px_area
                if not (_MIN_POOL_AREA_MM2 <= area <= _MAX_POOL_AREA_MM2):
                    continue
                cr, cc = _centroid(comp)
                if not central_fov[int(round(cr)), int(round(cc))]:
                    continue
                filled, roundness, solidity = _shape_features(comp, spacing)
                if roundness < 0.5 or solidity < 0.75:
                    continue
                band = ndi.binary_dilation(filled, _disk(4.0 / px)) & ~ndi.binary_erosion(filled, _disk(2.0 / px))
                motion = min(float(hz[band].mean()) / h_ref, 1.0)
                ring = ndi.binary_dilation(filled, _disk(5.0 / px)) & ~filled
                cov = _ring_coverage(im, filled, px, float(np.median(im[filled])), float(np.median(im[ring])))
                prox = math.exp(-((d_centre[int(round(cr)), int(round(cc))] / (_LOC_PRIOR_FRACTION * fov)) ** 2))
                score = roundness**2 * solidity**2 * cov**2 * math.sqrt(motion) * prox
                cands.append(_Candidate(z, (cr, cc), float(score), float(filled.sum() * px_area)))
    if not cands:
        raise ValueError("no left-ventricular blood pool candidate found (no bright, round, moving structure)")

    def support(c: _Candidate) -> float:
        total = 0.0
        for z in central:
            near = [o.score for o in cands if o.slice == z and math.hypot(
                (o.centre[0] - c.centre[0]) * spacing[0], (o.centre[1] - c.centre[1]) * spacing[1]) < _LOC_TUBE_MM]
            total += max(near, default=0.0)
        return total

    return max(cands, key=lambda c: (support(c), c.score, -c.slice))


# ----------------------------------------------------------------------- blood pool


def _segment_pool(
    img: np.ndarray,
    seed: tuple[float, float],
    prior: np.ndarray | None,
    prior_radius_mm: float,
    px_mm: float,
    *,
    margin_mm: float | None = None,
    also_within: tuple[np.ndarray, float] | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Blood pool of one image given a seed (row, col) and an optional prior mask.

    The opening radius grows (1.5, 3, 4.5 mm) until the pool is no more than
    ``_GROWTH_OPEN`` x the prior (cuts bridges into neighbouring cavities); the opened
    component is then dilated back inside the thresholded mask so the border is not eroded.
    With ``margin_mm`` the pool is kept within that distance of the prior.
    """
    R, C = img.shape
    sm = ndi.gaussian_filter(img, 0.5)
    radius_px = (_ROI_FACTOR * prior_radius_mm + _ROI_MARGIN_MM) / px_mm
    yy, xx = np.mgrid[0:R, 0:C]
    roi = np.hypot(yy - seed[0], xx - seed[1]) <= radius_px
    core_prior = None
    if prior is not None and prior.any():
        core_prior = ndi.binary_erosion(prior, _disk(2.0 / px_mm))
        if not core_prior.any():
            core_prior = prior
    seed_i = (int(round(min(max(seed[0], 0), R - 1))), int(round(min(max(seed[1], 0), C - 1))))
    otsu = _otsu(sm[roi])
    thr = otsu
    info: dict[str, float] = {"threshold": thr}
    comp = np.zeros_like(roi)
    for _ in range(1 + _LEVEL_PASSES):
        cand = sm > thr
        if also_within is not None:
            cand &= ndi.binary_dilation(also_within[0], _disk(also_within[1] / px_mm))
        comp = _pool_component(cand, roi, prior, core_prior, seed_i, px_mm, margin_mm)
        if not comp.any():
            return comp, info
        core = _convex_hull(comp)
        blood_level = float(np.median(sm[comp]))
        wall_ring = (ndi.binary_dilation(core, _disk(_WALL_RING_MM[1] / px_mm))
                     & ~ndi.binary_dilation(core, _disk(_WALL_RING_MM[0] / px_mm)) & roi)
        wall_level = float(np.percentile(sm[wall_ring], _WALL_PERCENTILE)) if wall_ring.any() else otsu
        info = {"threshold": thr, "blood_level": blood_level, "wall_level": wall_level}
        mid = wall_level + _MID_FRACTION * (blood_level - wall_level)
        if mid <= thr + 1e-6 * abs(thr):
            break
        thr = mid
    ring = ndi.binary_dilation(core, _disk(5.0 / px_mm)) & ~core & roi
    info["ring_level"] = float(np.median(sm[ring])) if ring.any() else otsu
    pool = _local_half_max(sm, core, blood_level, wall_level + _MID_FRACTION * (blood_level - wall_level), px_mm)
    return pool, info


def _pool_component(cand: np.ndarray, roi: np.ndarray, prior: np.ndarray | None, core_prior: np.ndarray | None,
                    seed_i: tuple[int, int], px_mm: float, margin_mm: float | None) -> np.ndarray:
    """The thresholded component that is the pool: openings of growing radius cut bridges
    until the pool is no more than ``_GROWTH_OPEN`` x the prior; dilated back inside the
    threshold; kept within ``margin_mm`` of the prior; holes filled."""
    cand = cand & roi
    comp = np.zeros_like(cand)
    for r_mm in _OPEN_RADII_MM:
        opened = ndi.binary_opening(cand, _disk(r_mm / px_mm))
        c = _largest_overlap_component(opened, core_prior, seed_i)
        if not c.any():
            break
        comp = ndi.binary_dilation(c, _disk(r_mm / px_mm)) & cand
        comp = _largest_overlap_component(comp, core_prior, seed_i)
        if prior is None or not prior.any() or comp.sum() <= _GROWTH_OPEN * prior.sum():
            break
    if margin_mm is not None and prior is not None and prior.any() and comp.any():
        comp &= ndi.binary_dilation(prior, _disk(margin_mm / px_mm))
        comp = _largest_overlap_component(comp, core_prior, seed_i)
    return ndi.binary_fill_holes(comp) if comp.any() else comp


def _local_half_max(sm: np.ndarray, core: np.ndarray, blood_level: float, mid_level: float,
                    px_mm: float) -> np.ndarray:
    """Endocardium at the local half-maximum between the blood pool and the wall next to it.

    ``core`` is the convex hull of the pool thresholded at the image's half-maximum
    ``mid_level`` (blood and wall levels measured around the whole pool).  On each of
    ``_BORDER_RAYS`` rays from its centroid, the local wall level is the darkest point of the
    profile within ``_LOCAL_WALL_MM`` outside the hull, and the border moves outwards while the
    profile stays at or above the local half-maximum (blood_level + local wall) / 2, to the
    sub-sample crossing.  The border never moves inside the hull: where the hull bridges
    papillary muscles or trabeculae (the profile is already below the half-maximum at the hull
    border) they stay in the cavity, the convention of the Sunnybrook experts.  A ray whose
    darkest point is not darker than ``mid_level`` has no wall within reach (outflow tract,
    a gap in the wall) and keeps the hull border.  No offset or level is fitted: the
    half-maximum is the edge of a blurred step, wherever the wall is brighter or darker.
    """
    if not core.any():
        return core
    cr, cc = _centroid(core)
    step = 0.25
    n_wall = int(round(_LOCAL_WALL_MM / px_mm / step))
    idx = np.argwhere(core)
    reach = float(np.hypot(idx[:, 0] - cr, idx[:, 1] - cc).max()) + 2.0 + _LOCAL_WALL_MM / px_mm
    rs = np.arange(0, reach, step)
    angles = np.arange(_BORDER_RAYS) * 2 * np.pi / _BORDER_RAYS
    radius = np.zeros(_BORDER_RAYS)
    core01 = core.astype(np.float32)
    for i, a in enumerate(angles):
        inside, prof = _ray_profile(core01, sm, (cr, cc), a, rs)
        out = np.nonzero(inside < 0.5)[0]
        if len(out) == 0 or out[0] == 0:
            continue
        j = out[0] - 1  # last sample inside the hull
        radius[i] = rs[j] + 0.5 * step
        window = prof[out[0] : out[0] + n_wall + 1]
        if len(window) == 0:
            continue
        jm = out[0] + int(np.argmin(window))
        wall = float(prof[jm])
        if wall >= mid_level:
            continue  # no wall within reach on this ray
        half = 0.5 * (blood_level + wall)
        if prof[j] < half:
            continue  # papillary muscle / trabeculae at the hull border: they stay in the cavity
        while j + 1 < jm and prof[j + 1] >= half:
            j += 1
        a_, b_ = float(prof[j]), float(prof[j + 1])
        radius[i] = rs[j] + step * ((a_ - half) / (a_ - b_) if a_ > b_ else 0.5)
    radius = _cyclic_median(radius, _BORDER_SMOOTH)
    poly = np.column_stack([cc + radius * np.cos(angles), cr + radius * np.sin(angles)])
    return _convex_hull(ndi.binary_fill_holes(rasterise_polygon(poly, core.shape) | core))


def segment_lv(cine: sitk.Image, *, slice_axis: int | None = None, with_myocardium: bool = True) -> CardiacSegmentation:
    """Segment the LV blood pool on every slice and phase where it is present; ED/ES; myocardium.

    ``cine`` is 4D (x, y, slice, phase), native DICOM order or canonical.  Masks are
    returned as arrays ``[phase, slice, row, col]`` where (row, col) are the numpy axes of
    the in-plane image (for a native DICOM read: the DICOM pixel array).
    """
    arr, spacing, ax = _to_tzrc(cine, slice_axis)
    T, Z, R, C = arr.shape
    scale = float(np.percentile(arr, 99.5)) or 1.0
    arr = arr / scale
    px = math.sqrt(spacing[0] * spacing[1])
    px_area = spacing[0] * spacing[1]
    start = _locate_lv(arr, spacing)
    z0 = start.slice
    blood = np.zeros((T, Z, R, C), dtype=bool)
    present = np.zeros((T, Z), dtype=bool)
    notes: list[str] = []

    # start slice: all phases, propagated in time from the located centre
    r0 = math.sqrt(start.area_mm2 / math.pi)
    prior = None
    seed = start.centre
    for t in list(range(T)) + [0]:  # second pass on phase 0 with phase T-1 as prior
        pool, _ = _segment_pool(arr[t, z0], seed, prior, r0 if prior is None else _eq_radius_mm(prior, px_area), px,
                                margin_mm=_MARGIN_PHASE_MM)
        if pool.any():
            blood[t, z0] = pool
            present[t, z0] = True
            prior = pool
            seed = _centroid(pool)
    start_area = blood[:, z0].sum(axis=(1, 2)) * px_area

    # propagate slice by slice towards apex and base; prior = neighbouring slice, same phase
    for direction in (-1, +1):
        z = z0 + direction
        while 0 <= z < Z:
            zp = z - direction
            pools: dict[int, np.ndarray] = {}
            cover: list[float] = []
            t_first = int(np.argmin(np.where(present[:, zp], blood[:, zp].sum(axis=(1, 2)), np.inf)))
            last: np.ndarray | None = None
            for t in [(t_first + k) % T for k in range(T)]:
                nb = blood[t, zp]
                if not nb.any():
                    last = None
                    continue
                if last is not None:
                    pool, lev = _segment_pool(arr[t, z], _centroid(last), last, _eq_radius_mm(last, px_area), px,
                                              margin_mm=_MARGIN_PHASE_MM, also_within=(nb, _MARGIN_SLICE_MM))
                else:
                    pool, lev = _segment_pool(arr[t, z], _centroid(nb), nb, _eq_radius_mm(nb, px_area), px,
                                              margin_mm=_MARGIN_SLICE_MM)
                area = pool.sum() * px_area
                last = None
                if not pool.any() or area < _APEX_AREA_FRACTION * max(start_area[t], 1.0):
                    cover.append(0.0)
                    continue
                if lev["blood_level"] <= lev["ring_level"]:
                    cover.append(0.0)
                    continue
                cover.append(_ring_coverage(ndi.gaussian_filter(arr[t, z], 0.7), pool, px,
                                            lev["blood_level"], lev["ring_level"]))
                pools[t] = pool
                last = pool
            med = float(np.median(cover)) if cover else 0.0
            if med < _RING_MIN_COVERAGE:
                notes.append(f"slice {z}: no LV (median wall coverage {med:.2f}); stop towards "
                             f"{'lower' if direction < 0 else 'higher'} slice indices")
                break
            for t, pool in pools.items():
                blood[t, z] = pool
                present[t, z] = True
            z += direction

    _trim_base(blood, present, z0, notes)
    ed, es = _ed_es_frames(blood.sum(axis=(1, 2, 3)).astype(float))
    myo = np.zeros_like(blood)
    if with_myocardium:
        for t in sorted({ed, es}):
            for z in range(Z):
                if present[t, z]:
                    myo[t, z] = _myocardium(arr[t, z], blood[t, z], spacing)
    return CardiacSegmentation(
        blood=blood,
        myocardium=myo,
        spacing_mm=spacing,
        ed_frame=ed,
        es_frame=es,
        frame_interval_ms=float(cine.GetSpacing()[3]) if cine.GetSpacing()[3] > 0 else None,
        slice_axis=ax,
        present=present,
        start_slice=z0,
        notes=notes,
    )


def _ed_es_frames(volume: np.ndarray) -> tuple[int, int]:
    """ED / ES = the phase of largest / smallest LV blood-pool volume (phases with an LV only).

    This is the SCMR post-processing convention (Schulz-Menger et al., JCMR 2020) applied to
    the whole-ventricle volume curve, unsmoothed.  The R-wave convention (ED = the first,
    triggered frame) is not used: the Sunnybrook experts never chose that frame (see
    docs/cardiac-segmentation.md, "ED and ES frames").  Near ED and ES the curve is flat to
    within 1-3 % over 2-4 frames, so the frame is well defined only to that precision; the
    volume curve is reported with the result so that a reader can see the plateau.
    """
    v = np.asarray(volume, dtype=float)
    has_lv = v > 0
    if not has_lv.any():
        return 0, 0
    ed = int(np.argmax(np.where(has_lv, v, -np.inf)))
    es = int(np.argmin(np.where(has_lv, v, np.inf)))
    return ed, es


def _trim_base(blood: np.ndarray, present: np.ndarray, z0: int, notes: list[str]) -> None:
    """Remove slices above the valve plane, in place.

    The base is the end of the stack whose outermost LV slice is larger at its largest phase
    (the ventricle narrows towards the apex).  Going from the start slice towards the base,
    a slice belongs to the ventricle only while its blood-pool area over the cycle rises and
    falls with the volume of the slices already accepted (correlation >= ``_BASE_MIN_CORR``):
    an atrium fills while the ventricle empties and the aortic root widens in systole, so
    their areas run against the ventricular volume even where a ring of tissue surrounds them.
    """
    T, Z = present.shape
    found = [z for z in range(Z) if present[:, z].any()]
    if len(found) < 3 or T < 3:
        return
    lo, hi = found[0], found[-1]
    area = blood.sum(axis=(2, 3)).astype(float)  # [T, Z]
    direction = +1 if area[:, hi].max() >= area[:, lo].max() else -1
    accepted = area[:, z0].copy()
    z = z0 + direction
    while 0 <= z < Z and present[:, z].any():
        a = area[:, z]
        corr = float(np.corrcoef(a, accepted)[0, 1]) if a.std() > 0 and accepted.std() > 0 else 0.0
        if corr < _BASE_MIN_CORR:
            cut = list(range(z, Z)) if direction > 0 else list(range(0, z + 1))
            cut = [c for c in cut if present[:, c].any()]
            notes.append(f"slice{'s' if len(cut) > 1 else ''} {', '.join(map(str, cut))}: above the valve plane "
                         f"(blood-pool area against the ventricular volume: correlation {corr:.2f})")
            blood[:, cut] = False
            present[:, cut] = False
            return
        accepted += a
        z += direction


# ----------------------------------------------------------------------- myocardium


def _myocardium(img: np.ndarray, pool: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Myocardial ring around ``pool`` by a radial search for the epicardial border."""
    px = math.sqrt(spacing[0] * spacing[1])
    sm = ndi.gaussian_filter(img, 0.7)
    cr, cc = _centroid(pool)
    blood_level = float(np.median(sm[pool]))
    band = ndi.binary_dilation(pool, _disk(4.0 / px)) & ~ndi.binary_dilation(pool, _disk(1.0 / px))
    vals = sm[band]
    myo_level = float(np.percentile(vals, 30))  # the wall is the darker part of the band
    hi = myo_level + 0.5 * (blood_level - myo_level)  # bright fat / RV blood beyond the wall
    lo = 0.5 * myo_level  # lung / air
    step = 0.25
    rs = np.arange(0, (_MAX_WALL_MM + 60.0) / px, step)
    angles = np.arange(_N_RAYS) * 2 * np.pi / _N_RAYS
    endo_r = np.zeros(_N_RAYS)
    thick = np.full(_N_RAYS, np.nan)
    pool01 = pool.astype(np.float32)
    for i, a in enumerate(angles):
        inside, prof = _ray_profile(pool01, sm, (cr, cc), a, rs)
        outside = np.nonzero(inside < 0.5)[0]
        if len(outside) == 0:
            continue
        j0 = outside[0]
        endo_r[i] = rs[j0]
        jmin = j0 + int(round(_MIN_WALL_MM / px / step))
        jmax = min(j0 + int(round(_MAX_WALL_MM / px / step)), len(prof) - 1)
        seg = prof[jmin : jmax + 1]
        leave = np.nonzero((seg > hi) | (seg < lo))[0]
        if len(leave):
            thick[i] = (jmin + leave[0] - j0) * step * px
    good = np.isfinite(thick)
    if good.sum() < _N_RAYS // 4:
        med = 8.0  # wall thickness unknown: a typical value (mm)
        thick = np.full(_N_RAYS, med)
    else:
        med = float(np.median(thick[good]))
        thick = np.where(good, thick, med)
        thick = _cyclic_median(thick, 7)
        thick = np.clip(thick, 0.5 * med, 2.0 * med)
    epi_r = endo_r + thick / px
    poly = np.column_stack([cc + epi_r * np.cos(angles), cr + epi_r * np.sin(angles)])
    epi = rasterise_polygon(poly, img.shape) | pool
    return epi & ~pool


# -------------------------------------------------------------------------- function


def volume_curve_ml(masks: np.ndarray, spacing_mm: Sequence[float], slices: Sequence[int] | None = None) -> np.ndarray:
    """Volume per phase (ml) of masks [T, Z, R, C] by summation of discs over ``slices``."""
    sel = masks if slices is None else masks[:, list(slices)]
    return sel.sum(axis=(1, 2, 3)) * (spacing_mm[0] * spacing_mm[1] * spacing_mm[2]) / 1000.0


def lv_function(
    seg: CardiacSegmentation,
    spacing_mm: Sequence[float] | None = None,
    *,
    slices: Sequence[int] | None = None,
    ed_frame: int | None = None,
    es_frame: int | None = None,
) -> dict[str, Any]:
    """EDV, ESV, SV (ml), EF (%), LV mass (g) by summation of discs.

    ``spacing_mm`` = (row, col, slice) with the true slice spacing (default: the
    segmentation's).  ``slices`` restricts the sum (default: all); ``ed_frame`` /
    ``es_frame`` override the automatic frames.
    """
    sp = tuple(float(s) for s in (spacing_mm or seg.spacing_mm))
    ed = seg.ed_frame if ed_frame is None else int(ed_frame)
    es = seg.es_frame if es_frame is None else int(es_frame)
    zs = list(range(seg.n_slices)) if slices is None else sorted(int(z) for z in slices)
    vox_ml = sp[0] * sp[1] * sp[2] / 1000.0
    edv = float(seg.blood[ed][zs].sum()) * vox_ml
    esv = float(seg.blood[es][zs].sum()) * vox_ml
    myo_ml = float(seg.myocardium[ed][zs].sum()) * vox_ml
    return {
        "edv_ml": edv,
        "esv_ml": esv,
        "sv_ml": edv - esv,
        "ef_percent": 100.0 * (edv - esv) / edv if edv > 0 else float("nan"),
        "lv_mass_g": myo_ml * MYOCARDIUM_DENSITY_G_ML if seg.myocardium[ed].any() else None,
        "ed_frame": ed,
        "es_frame": es,
        "slices_used": [z for z in zs if seg.blood[ed, z].any() or seg.blood[es, z].any()],
        "slice_spacing_mm": sp[2],
    }


# ---------------------------------------------------------------------- expert scoring


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int(np.logical_and(a, b).sum()) / s


def expert_masks(
    contours: Mapping[int, np.ndarray],
    frames: Sequence[DicomFrame],
    shape: tuple[int, int],
    *,
    pixel_centre: float = 0.0,
) -> dict[tuple[int, int], np.ndarray]:
    """Rasterised expert polygons keyed by (slice, phase), via image number -> DICOM frame."""
    by_number = {f.image_number: f for f in frames if f.image_number is not None}
    out: dict[tuple[int, int], np.ndarray] = {}
    for n, pts in sorted(contours.items()):
        if n not in by_number:
            raise ValueError(f"contour for image {n} but no DICOM file for that image number")
        f = by_number[n]
        out[(f.slice, f.phase)] = rasterise_polygon(pts, shape, pixel_centre=pixel_centre)
    return out


def _expert_frames(endo: Mapping[tuple[int, int], np.ndarray], spacing: Sequence[float]) -> tuple[int, int, list[int]]:
    """ED/ES phases and the slices contoured at both, from expert endocardial masks."""
    phases = sorted({t for _, t in endo})
    if len(phases) < 2:
        raise ValueError(f"expert contours cover {len(phases)} phase(s); ED and ES need two")
    by_phase = {t: {z for z, tt in endo if tt == t} for t in phases}
    # the two phases with most contoured slices; ED = larger volume on the common slices
    p1, p2 = sorted(phases, key=lambda t: (-len(by_phase[t]), t))[:2]
    common = sorted(by_phase[p1] & by_phase[p2])
    v = {t: sum(int(endo[(z, t)].sum()) for z in common) for t in (p1, p2)}
    ed, es = (p1, p2) if v[p1] >= v[p2] else (p2, p1)
    return ed, es, common


def score_against_contours(
    seg: CardiacSegmentation,
    endo: Mapping[tuple[int, int], np.ndarray],
    epi: Mapping[tuple[int, int], np.ndarray] | None = None,
    *,
    image_numbers: Mapping[tuple[int, int], int] | None = None,
) -> dict[str, Any]:
    """Dice per contoured image and expert vs automatic function on the same slices.

    Expert ED/ES are the two contoured phases (ED = larger volume); the slices are those
    contoured at both phases (a slice contoured at only one phase is left out of both
    volumes, so that EDV and ESV cover the same slab).  The automatic EF is computed the
    same way on those slices, with the automatic ED/ES frames (``auto_*``) and with the
    expert frames (``auto_at_expert_frames_*``).  ``auto_volume_expert_ed_over_max`` and
    ``auto_volume_expert_es_over_min`` place the expert frames on the automatic
    whole-ventricle volume curve: how far they are from its largest / smallest volume.
    """
    sp = seg.spacing_mm
    vox_ml = sp[0] * sp[1] * sp[2] / 1000.0
    per_image = []
    for (z, t), m in sorted(endo.items()):
        per_image.append({
            "slice": z, "phase": t,
            "image_number": None if image_numbers is None else image_numbers.get((z, t)),
            "dice_endo": dice(seg.blood[t, z], m),
            "expert_area_mm2": float(m.sum()) * sp[0] * sp[1],
            "auto_area_mm2": float(seg.blood[t, z].sum()) * sp[0] * sp[1],
        })
    ed, es, common = _expert_frames(endo, sp)
    e_edv = sum(float(endo[(z, ed)].sum()) for z in common) * vox_ml
    e_esv = sum(float(endo[(z, es)].sum()) for z in common) * vox_ml
    auto = lv_function(seg, slices=common)
    auto_x = lv_function(seg, slices=common, ed_frame=ed, es_frame=es)
    curve = volume_curve_ml(seg.blood, sp)
    out: dict[str, Any] = {
        "n_images": len(per_image),
        "mean_dice_endo": float(np.mean([p["dice_endo"] for p in per_image])) if per_image else None,
        "per_image": per_image,
        "slices": common,
        "expert_ed_frame": ed,
        "expert_es_frame": es,
        "expert_edv_ml": e_edv,
        "expert_esv_ml": e_esv,
        "expert_ef_percent": 100.0 * (e_edv - e_esv) / e_edv if e_edv > 0 else float("nan"),
        "auto_ed_frame": seg.ed_frame,
        "auto_es_frame": seg.es_frame,
        "auto_edv_ml": auto["edv_ml"],
        "auto_esv_ml": auto["esv_ml"],
        "auto_ef_percent": auto["ef_percent"],
        "auto_at_expert_frames_ef_percent": auto_x["ef_percent"],
        # the expert frames on the automatic whole-ventricle volume curve, relative to the
        # automatic ED / ES (its extremes; 1.0 = the expert chose the frame the rule chose)
        "auto_volume_expert_ed_over_max": float(curve[ed] / curve[seg.ed_frame]) if curve[seg.ed_frame] > 0 else None,
        "auto_volume_expert_es_over_min": float(curve[es] / curve[seg.es_frame]) if curve[seg.es_frame] > 0 else None,
    }
    if epi:
        d_epi, d_myo, e_myo_ml, a_myo_ml = [], [], 0.0, 0.0
        for (z, t), m in sorted(epi.items()):
            auto_epi = seg.blood[t, z] | seg.myocardium[t, z]
            d_epi.append(dice(auto_epi, m))
            if (z, t) in endo:
                em = m & ~endo[(z, t)]
                d_myo.append(dice(seg.myocardium[t, z], em))
                e_myo_ml += float(em.sum()) * vox_ml
                a_myo_ml += float(seg.myocardium[t, z].sum()) * vox_ml
        out.update({
            "mean_dice_epi": float(np.mean(d_epi)),
            "mean_dice_myo": float(np.mean(d_myo)) if d_myo else None,
            "expert_myo_mass_g_contoured": e_myo_ml * MYOCARDIUM_DENSITY_G_ML,
            "auto_myo_mass_g_contoured": a_myo_ml * MYOCARDIUM_DENSITY_G_ML,
        })
    return out


def apply_expert_contours(
    seg: CardiacSegmentation,
    endo: Mapping[tuple[int, int], np.ndarray],
    epi: Mapping[tuple[int, int], np.ndarray] | None = None,
) -> CardiacSegmentation:
    """Copy of ``seg`` where contoured images take the expert masks and ED/ES the expert phases.

    Images without an expert contour keep the automatic masks, so the whole ventricle is
    still covered; the expert frames win because the experts chose them.
    """
    blood = seg.blood.copy()
    myo = seg.myocardium.copy()
    present = seg.present.copy()
    for (z, t), m in endo.items():
        blood[t, z] = m
        present[t, z] = bool(m.any())
        if epi is not None and (z, t) in epi:
            myo[t, z] = epi[(z, t)] & ~m
        else:
            myo[t, z] &= ~m
    ed, es, _ = _expert_frames(endo, seg.spacing_mm)
    return CardiacSegmentation(
        blood=blood, myocardium=myo, spacing_mm=seg.spacing_mm, ed_frame=ed, es_frame=es,
        frame_interval_ms=seg.frame_interval_ms, slice_axis=seg.slice_axis, present=present,
        start_slice=seg.start_slice, notes=seg.notes + ["expert contours used where supplied"],
    )


def cardiac_function_record(function: Mapping[str, Any], *, source: str, score: Mapping[str, Any] | None = None) -> dict:
    """The ``cardiac_function`` entry of twin.json (rounded, units in the keys)."""

    def r(x, nd=2):
        return None if x is None else round(float(x), nd)

    rec = {
        "edv_ml": r(function["edv_ml"]),
        "esv_ml": r(function["esv_ml"]),
        "sv_ml": r(function["sv_ml"]),
        "ef_percent": r(function["ef_percent"]),
        "lv_mass_g": r(function.get("lv_mass_g")),
        "ed_frame": int(function["ed_frame"]),
        "es_frame": int(function["es_frame"]),
        "slices_used": [int(z) for z in function.get("slices_used", [])],
        "slice_spacing_mm": r(function.get("slice_spacing_mm"), 4),
        "method": "summation of discs; myocardial density 1.05 g/ml",
        "source": source,
    }
    if score is not None:
        rec["expert_agreement"] = {
            "mean_dice_endo": r(score.get("mean_dice_endo"), 4),
            "n_images": int(score.get("n_images", 0)),
            "expert_ef_percent": r(score.get("expert_ef_percent")),
            "auto_ef_percent": r(score.get("auto_ef_percent")),
        }
    return rec


# -------------------------------------------------------------------------- QC PNG


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask)


def overlay_png(
    image: np.ndarray,
    seg: CardiacSegmentation,
    phase: int,
    out_path: str | Path,
    *,
    expert: Mapping[tuple[int, int], np.ndarray] | None = None,
    crop_mm: float = 120.0,
) -> None:
    """Deterministic PNG: all slices with an LV at ``phase`` side by side (apex..base order of
    the slice axis), cropped around the LV, endocardium red, epicardium green, expert yellow.

    ``image`` is the [T, Z, R, C] array (e.g. from :func:`cine_array`).
    """
    zs = [z for z in range(seg.n_slices) if seg.blood[phase, z].any()] or [seg.start_slice]
    px = math.sqrt(seg.spacing_mm[0] * seg.spacing_mm[1])
    half = int(round(crop_mm / px / 2))
    centres = [_centroid(seg.blood[phase, z]) for z in zs if seg.blood[phase, z].any()]
    cr, cc = (np.mean([c[0] for c in centres]), np.mean([c[1] for c in centres])) if centres else (
        image.shape[2] / 2, image.shape[3] / 2)
    r0, c0 = int(round(cr)) - half, int(round(cc)) - half
    tiles = []
    for z in zs:
        im = np.asarray(image[phase, z], dtype=np.float64)
        lo, hi = np.percentile(im, [1.0, 99.5])
        g = np.clip((im - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(im)
        rgb = np.repeat(np.rint(g * 255).astype(np.uint8)[..., None], 3, axis=2)
        layers = [(seg.blood[phase, z], (255, 0, 0))]
        if seg.myocardium[phase, z].any():
            layers.append((seg.myocardium[phase, z] | seg.blood[phase, z], (0, 255, 0)))
        if expert is not None and (z, phase) in expert:
            layers.append((expert[(z, phase)], (255, 255, 0)))
        for m, colour in layers:
            rgb[_boundary(m)] = colour
        pad = np.zeros((2 * half, 2 * half, 3), np.uint8)
        rs, cs = slice(max(r0, 0), min(r0 + 2 * half, im.shape[0])), slice(max(c0, 0), min(c0 + 2 * half, im.shape[1]))
        pad[rs.start - r0 : rs.stop - r0, cs.start - c0 : cs.stop - c0] = rgb[rs, cs]
        tiles.append(pad)
    from twinflow.io.png import write_png

    write_png(out_path, np.concatenate(tiles, axis=1))


def add_myocardium(seg: CardiacSegmentation, image: np.ndarray, phases: Sequence[int]) -> None:
    """Fill ``seg.myocardium`` at further ``phases`` (e.g. the expert frames), in place.

    ``image`` is the [T, Z, R, C] array of :func:`cine_array` (any intensity scale).
    """
    for t in sorted(set(int(p) for p in phases)):
        for z in range(seg.n_slices):
            if seg.blood[t, z].any() and not seg.myocardium[t, z].any():
                seg.myocardium[t, z] = _myocardium(np.asarray(image[t, z], dtype=np.float32), seg.blood[t, z],
                                                   seg.spacing_mm)


def cine_array(cine: sitk.Image, slice_axis: int | None = None) -> np.ndarray:
    """The [phase, slice, row, col] float32 array that :func:`segment_lv` works on."""
    return _to_tzrc(cine, slice_axis)[0]
