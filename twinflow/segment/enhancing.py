"""An enhancing lesion inside a region of interest, from one evidence map (arrays ``[z, y, x]``).

Used for every organ (brain, breast, ...) whenever the lesion is known to lie in a box:
a user's ROI, or the box the automatic detection drew around its best candidate.  Nothing
assumes an organ mask: structures that cross the box's border (scalp fat, chest wall, heart,
vessels running through) are told apart from the lesion the box was drawn around.

1. **Local standardisation.**  Robust z of the evidence (T1post, or T1post - T1) over the box
   (inside the organ mask when one is given; air excluded).
2. **Candidates.**  The map is median-filtered in-plane (radius :data:`SMOOTH_MM`, keeps
   edges and 4 mm lesions, removes noise), thresholded at Otsu's split of the box (never below
   :data:`Z_SEED_MIN`), and cut into connected components.  A component that touches the box's
   border without reaching its central part (the middle :data:`CENTRAL_FRACTION` of every
   extent) belongs to a structure the box was not drawn around and is dropped; so is one
   thinner than :data:`THIN_MM` (a vessel in plane) unless it is the only one.
3. **Boundary.**  Half maximum: half-way between the seeds' median z and the median of the
   box's remaining tissue (never below :data:`Z_GROW_MIN`), grown from the seeds over connected
   voxels up to :data:`GROW_MM` away; holes filled (a necrotic centre is part of the lesion).
4. **Nothing found** is never silent: :class:`NoLesion` carries the statistics (median, robust
   SD, maximum z, seed threshold, what was rejected and why) for the caller's error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from twinflow.segment.lesion import ball, bbox, fill_holes, gmm2, grow_box, keep_touching, robust_z, slice_axis

__all__ = ["NoLesion", "RoiLesion", "segment_in_box", "box_mask_border", "central_part", "detect_lesions", "boxes_around",
           "extend_rim"]

#: in-plane median filter radius of the seeding map (noise; keeps a 4 mm lesion)
SMOOTH_MM = 1.0
#: seed threshold (robust z over the box, smoothed map)
Z_SEED = 2.5
#: a lesion too small for the noise filter seeds unsmoothed at this z (Gaussian noise exceeds
#: it once in 3.5 million voxels)
Z_SPECK = 5.0
#: boundary threshold floor
Z_GROW_MIN = 1.0
#: growth from the seeds reaches at most this far
GROW_MM = 5.0
#: the box's margin: outside the central part of this fraction of each extent
BAND_FRACTION = 0.6
#: further foci are part of the lesion when at most this far from it (or from another focus) ...
FOCUS_GAP_MM = 10.0
#: ... or at least this fraction of the primary focus's size
FOCUS_FRACTION = 0.1
#: background level: median of the tissue between GROW_MM / 2 and this far from the seeds
SHELL_MM = 10.0
#: central part of the box (fraction of each extent, centred) that a border-touching lesion must reach
CENTRAL_FRACTION = 0.5
#: a component whose largest inscribed in-plane disc has a radius below this is a vessel
THIN_MM = 1.0


class NoLesion(Exception):
    """No lesion in the box; ``stats`` explains why (JSON-ready)."""

    def __init__(self, reason: str, stats: dict[str, Any]):
        self.reason = reason
        self.stats = stats
        super().__init__(reason)


@dataclass
class RoiLesion:
    """``mask``: the lesion with enclosed holes filled; ``enhancing``: its voxels above the
    boundary level; ``z``: the box-standardised evidence (meaningful inside the box)."""

    mask: np.ndarray
    enhancing: np.ndarray
    seeds: np.ndarray
    z: np.ndarray  # robust z over the box (whole array; meaningful inside the box)
    notes: dict[str, Any] = field(default_factory=dict)
    reference_z: float = 0.0  # upper bound of the brightest normal tissue in the box's margin


def box_mask_border(box: np.ndarray) -> np.ndarray:
    """Voxels of ``box`` on its boundary (a neighbour outside the box or outside the array)."""
    padded = np.pad(box, 1, constant_values=False)
    inner = ndi.binary_erosion(padded, np.ones((3, 3, 3), bool))[1:-1, 1:-1, 1:-1]
    return box & ~inner


def central_part(box: np.ndarray, fraction: float = CENTRAL_FRACTION) -> np.ndarray:
    """The middle ``fraction`` of the box's extent along each axis (at least one voxel)."""
    out = np.zeros_like(box)
    idx = np.nonzero(box)
    if not idx[0].size:
        return out
    sl = []
    for a in idx:
        lo, hi = int(a.min()), int(a.max())
        c, half = 0.5 * (lo + hi), 0.5 * fraction * (hi - lo)
        sl.append(slice(int(np.floor(c - half)), int(np.ceil(c + half)) + 1))
    out[tuple(sl)] = True
    return out & box


def _inplane_footprint(sp: np.ndarray, r_mm: float) -> np.ndarray:
    fp = ball(sp, r_mm)
    ax = slice_axis(sp)
    if ax is not None and fp.shape[ax] > 1:
        fp = np.take(fp, [fp.shape[ax] // 2], axis=ax)
    return fp


def _thickness_mm(comp: np.ndarray, sp: np.ndarray) -> float:
    """Radius (mm) of the largest disc inscribed in the component, in the acquired planes."""
    ax = slice_axis(sp)
    ax = 0 if ax is None else ax
    moved = np.moveaxis(comp, ax, 0)
    sp2 = np.delete(sp, ax)
    best = 0.0
    for sl in moved:
        if sl.any():
            best = max(best, float(ndi.distance_transform_edt(np.pad(sl, 1), sampling=sp2).max()))
    return best


def _centrality(lab: np.ndarray, ids: np.ndarray, box: np.ndarray, sp: np.ndarray) -> np.ndarray:
    """Distance of each component's centroid from the box centre, in units of the box's
    half extent along that axis (0 = centre, 1 = on the border); the largest over the axes."""
    idx = np.nonzero(box)
    lo = np.array([a.min() for a in idx], float)
    hi = np.array([a.max() for a in idx], float)
    centre, half = 0.5 * (lo + hi), np.maximum(0.5 * (hi - lo), 0.5)
    cms = np.atleast_2d(np.asarray(ndi.center_of_mass(np.ones_like(lab, dtype=float), lab, ids), float))
    return np.max(np.abs(cms - centre) / half, axis=1)


def _structure(sp: np.ndarray) -> np.ndarray:
    """Connectivity: face neighbours; for thick slices (> 2x the in-plane spacing) only within a
    slice, because a 6 mm step says little about whether two bright spots are one structure."""
    st = ndi.generate_binary_structure(3, 1)
    ax = slice_axis(sp)
    if ax is not None and sp[ax] > 2.0 * np.min(sp):
        idx = [1, 1, 1]
        for k in (0, 2):
            idx[ax] = k
            st[tuple(idx)] = False
    return st


def _reference_level(values: np.ndarray) -> float:
    """Upper bound of the brightest normal tissue in the box's margin: mean + 2 SD of the bright
    component of a two-class mixture when the margin holds two distinct tissues (fat and
    fibroglandular tissue in the breast), else of the margin as a whole (robust)."""
    mix = gmm2(values)
    if mix is not None and mix.separation >= 3.0 and mix.weight[1] >= 0.1:
        return mix.mean[1] + 2.0 * mix.sd[1]
    med = float(np.median(values))
    return med + 2.0 * 1.4826 * float(np.median(np.abs(values - med)))


def _grow_footprint(sp: np.ndarray) -> np.ndarray:
    """Ball of GROW_MM that reaches at least the neighbouring slices (thick slices: a lesion
    seen on one slice continues, at lower partial-volume contrast, on the next)."""
    fp = ball(sp, GROW_MM)
    ax = slice_axis(sp)
    if ax is not None and fp.shape[ax] < 3:
        disc = np.take(fp, [fp.shape[ax] // 2], axis=ax)
        fp = np.concatenate([disc, disc, disc], axis=ax)
    return fp


def segment_in_box(evidence: np.ndarray, region: np.ndarray, box: np.ndarray, sp: np.ndarray,
                   *, min_voxels: float = 1.0) -> RoiLesion:
    """The lesion the ``box`` was drawn around (see module doc).  ``region`` = box inside the
    organ / foreground.  Raises :class:`NoLesion` when there is none."""
    if not region.any():
        raise NoLesion("the box contains no tissue", {"box_voxels": int(box.sum())})
    crop = bbox(box)
    found = _segment_cropped(np.asarray(evidence[crop], dtype=np.float64), region[crop], box[crop], sp, min_voxels)
    for name in ("mask", "enhancing", "seeds"):
        full = np.zeros(box.shape, bool)
        full[crop] = getattr(found, name)
        setattr(found, name, full)
    z = np.zeros(box.shape)
    z[crop] = found.z
    found.z = z
    return found


def _segment_cropped(evidence: np.ndarray, region: np.ndarray, box: np.ndarray, sp: np.ndarray,
                     min_voxels: float) -> RoiLesion:
    fp = _inplane_footprint(sp, SMOOTH_MM)
    st = _structure(sp)
    border = box_mask_border(box)
    if not np.array_equal(st, ndi.generate_binary_structure(3, 1)):
        border = box & ~ndi.binary_erosion(np.pad(box, 1), st)[1:-1, 1:-1, 1:-1]  # in-plane border only

    def components(mask: np.ndarray):
        lab, n = ndi.label(mask, structure=st)
        ids = np.arange(1, n + 1)
        if n == 0:
            return lab, ids, np.zeros(0, bool), np.zeros(0)
        hit = np.zeros(n + 1, bool)
        hit[np.unique(lab[border & mask])] = True
        return lab, ids, hit[1:], _centrality(lab, ids, box, sp)

    # 1. statistics of the tissue the lesion sits in: structures crossing the box's border far
    #    from its centre (scalp fat, bone, air, chest wall) leave them (second pass)
    stats_region = region
    for _ in range(2):
        z, med, scale = robust_z(evidence, stats_region)
        zs = ndi.median_filter(np.where(region, z, 0.0), footprint=fp, mode="nearest") if fp.sum() > 1 else z
        other = region & (np.abs(zs) >= Z_SEED)
        lab, ids, touches, off = components(other)
        drop = np.isin(lab, ids[touches & (off > CENTRAL_FRACTION)])
        if not drop.any() or (region & ~drop).sum() < 0.25 * region.sum():
            break
        stats_region = region & ~ndi.binary_dilation(drop, fp)
    # the brightest normal tissue: the upper quartile of the box's margin (the ROI was drawn
    # with the lesion inside; in the breast this is fibroglandular tissue, in the brain grey matter)
    band = region & ~central_part(box, BAND_FRACTION)
    ref = _reference_level(zs[band]) if band.sum() >= 20 else Z_SEED
    t_seed = max(Z_SEED, ref)
    stats: dict[str, Any] = {
        "box_median": med, "box_robust_sd": scale, "max_z": float(np.max(z[region])),
        "max_smoothed_z": float(np.max(zs[region])), "normal_tissue_upper_z": ref, "seed_threshold_z": t_seed,
    }
    # 2. candidates, and the structures the box was not drawn around
    cand = region & (zs >= t_seed)
    if not cand.any():
        # a lesion smaller than the noise filter (one or two voxels) must stand out on its own
        cand = region & (z >= max(Z_SPECK, t_seed))
        zs = np.where(cand, z, zs)
        stats["seeded_unsmoothed_at_z"] = max(Z_SPECK, t_seed)
    lab, ids, touches, off = components(cand)
    stats["candidates"] = int(ids.size)
    if ids.size == 0:
        raise NoLesion(f"nothing in the box reaches the seed level z >= {t_seed:.2f} (smoothed) or "
                       f"{max(Z_SPECK, t_seed):.2f} (single voxels)", stats)
    sizes = np.bincount(lab.ravel(), minlength=ids.size + 1)[1:]
    crossing = touches & (off > CENTRAL_FRACTION)
    objs = ndi.find_objects(lab)
    thick = np.array([_thickness_mm(lab[objs[i - 1]] == i, sp) >= THIN_MM for i in ids])
    ok = ~crossing & (sizes >= min_voxels)
    stats["rejected_crossing_the_box_border"] = int(np.count_nonzero(crossing))
    stats["rejected_thin"] = int(np.count_nonzero(ok & ~thick)) if (ok & thick).any() else 0
    if (ok & thick).any():
        ok &= thick
    if not ok.any():
        raise NoLesion("every bright structure in the box crosses its border (none lies inside it)", stats)
    # 3. the primary focus: most excess brightness, nearest the centre
    excess = np.asarray(ndi.sum(zs - t_seed, lab, ids), float)
    score = excess * (1.0 - 0.5 * np.clip(off, 0.0, 1.0)) * np.where(touches, 0.5, 1.0)
    score[~ok] = -np.inf
    primary = int(ids[int(np.argmax(score))])
    seeds = lab == primary
    lesion_z = float(np.median(z[seeds]))
    shell = region & ndi.binary_dilation(seeds, ball(sp, SHELL_MM)) & ~ndi.binary_dilation(seeds, ball(sp, GROW_MM / 2))
    bg = float(np.median(z[shell])) if shell.any() else float(np.median(z[region]))
    t_grow = max(Z_GROW_MIN, min(ref, lesion_z), bg + 0.5 * (lesion_z - bg))
    # 4. further foci (multifocal or heterogeneous lesion, the lesion's other slices): not
    #    crossing the border, not thin, as bright as the primary's boundary, and either large
    #    or chained to the lesion within FOCUS_GAP_MM
    medians = np.asarray(ndi.median(z, lab, ids), float)
    extra = ok & ~touches & (medians >= t_grow) & (ids != primary)
    taken = extra & (sizes >= FOCUS_FRACTION * sizes[primary - 1])
    seeds |= np.isin(lab, ids[taken])
    while True:
        reach = ndi.distance_transform_edt(~seeds, sampling=sp) <= FOCUS_GAP_MM
        new = extra & ~taken
        new[new] = np.isin(ids[new], np.unique(lab[reach & np.isin(lab, ids[new])]))
        if not new.any():
            break
        taken |= new
        seeds |= np.isin(lab, ids[new])
    # 5. half-maximum boundary, grown from the seeds up to GROW_MM, never into the structures
    #    crossing the border; enclosed holes (necrosis) filled
    near = ndi.binary_dilation(seeds, _grow_footprint(sp))
    foreign = np.isin(lab, ids[crossing])
    grown = keep_touching(region & near & ~foreign & (z >= t_grow), seeds)
    mask = fill_holes(grown, sp) & region
    stats.update({"lesion_median_z": lesion_z, "background_median_z": bg, "boundary_z": t_grow,
                  "components_kept": int(1 + np.count_nonzero(taken))})
    return RoiLesion(mask=mask, enhancing=grown & region, seeds=seeds, z=z, notes=stats, reference_z=ref)


# ------------------------------------------------------------------ automatic detection

#: automatic detection: robust z (over the whole organ) above which a voxel seeds a lesion
Z_DETECT = 3.0
#: ... and the floor of its half-maximum growth
Z_DETECT_GROW = 2.0
#: opening that removes vessels, dura and noise specks from detections (and closing of the blob test)
OPEN_MM = 1.5
#: a detection must contain a ball of this radius (vessels are thinner)
BLOB_MM = 3.0
#: smallest detection (10 mm sphere ~ 0.52 ml: RANO measurable disease)
MIN_LESION_ML = 0.5
#: with an *estimated* brain mask, detections whose median depth is less than this are
#: skull-strip leftovers (dura, sinus, scalp)
SURFACE_MM = 12.0
#: a smaller or superficial blob (down to SATELLITE_MIN_ML) within this distance of a detection
#: is a satellite (the usual definition of satellite lesions: within 2 cm of the primary)
SATELLITE_MM = 20.0
SATELLITE_MIN_ML = 0.1
#: ... and, with an estimated brain mask, deeper than the erosion that cut the brain from the
#: scalp (twinflow.segment.tumour_inputs.BRAIN_ERODE_MM): shallower blobs may be leftovers
SATELLITE_DEPTH_MM = 6.0
#: the box drawn around each detection before it is segmented like a user's ROI
AUTO_BOX_MM = 10.0


def _grow_half_max(z: np.ndarray, allowed: np.ndarray, seeds: np.ndarray, floor: float) -> np.ndarray:
    """Each seeded component of ``allowed & z >= floor`` shrinks to its half maximum
    ``max(floor, 0.5 x median seed z)`` (the organ's median is 0 on this scale)."""
    lab, n = ndi.label(allowed & (z >= floor))
    out = np.zeros_like(seeds)
    if n == 0 or not seeds.any():
        return out
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        comp = lab[sl] == i
        s = seeds[sl] & comp
        if not s.any():
            continue
        e = z[sl]
        sub = comp & (e >= max(floor, 0.5 * float(np.median(e[s]))))
        out[sl] |= keep_touching(sub, s)
    return out


def detect_lesions(z: np.ndarray, domain: np.ndarray, sp: np.ndarray, voxel_ml: float, notes: dict[str, Any],
                   *, estimated_mask: bool) -> np.ndarray:
    """Fully automatic candidates: compact bright blobs of at least MIN_LESION_ML.

    Seeds above Z_DETECT, or one SD above the upper bound of the organ's brightest normal
    tissue when that is higher (:func:`_reference_level`), opened by OPEN_MM, grow to their
    half maximum and are opened again (so an enhancing rim must be about 3 mm thick to be
    detected; inside an ROI thinner ones are found).  The blob rule (a ball of BLOB_MM fits in
    the component once it is closed by OPEN_MM and hole-filled: a ring-enhancing lesion counts,
    a vessel does not) and the size rule drop vessels, dura and noise; with an estimated brain
    mask, components near its surface are dropped (skull-strip leftovers), except satellites.
    """
    # the organ's brightest normal tissue (fibroglandular tissue among fat) sets the floor
    ref = _reference_level(z[domain][:: max(1, int(domain.sum()) // 500_000)])
    t_seed, t_floor = max(Z_DETECT, ref + 1.0), max(Z_DETECT_GROW, ref)
    notes.update({"normal_tissue_upper_z": ref, "seed_z": t_seed, "floor_z": t_floor})
    seeds = domain & (z >= t_seed)
    if seeds.any():
        seeds = ndi.binary_opening(seeds, ball(sp, OPEN_MM))
    mask = _grow_half_max(z, domain, seeds, t_floor)
    if mask.any():
        mask = ndi.binary_opening(mask, ball(sp, OPEN_MM))
    lab, n = ndi.label(mask)
    if n == 0:
        notes["detections"] = 0
        return mask
    sizes = np.bincount(lab.ravel())
    # closed and filled: a ring-enhancing lesion is a blob
    solid = fill_holes(ndi.binary_closing(mask, ball(sp, OPEN_MM)) | mask, sp)
    core = ndi.binary_opening(solid, ball(sp, BLOB_MM))
    blob = np.zeros(n + 1, bool)
    blob[np.unique(lab[core])] = True
    blob[0] = False
    deep = blob.copy()
    if estimated_mask:
        depth = ndi.distance_transform_edt(np.pad(domain, 1), sampling=sp)[1:-1, 1:-1, 1:-1]
        med = np.concatenate([[0.0], np.asarray(ndi.median(depth, lab, np.arange(1, n + 1)), float)])
        notes["superficial_detections_dropped"] = int(np.count_nonzero(blob & (med < SURFACE_MM)))
        deep &= med >= SURFACE_MM
    keep = deep & (sizes * voxel_ml >= MIN_LESION_ML)
    notes["detections"] = int(np.count_nonzero(keep))
    # satellites: smaller or superficial blobs within SATELLITE_MM of a detected lesion (the box
    # around them is then segmented as a whole: what crosses its border is rejected there)
    small = blob & ~keep & (sizes * voxel_ml >= SATELLITE_MIN_ML)
    if estimated_mask:  # skull-strip leftovers lie within the erosion depth of the estimated surface
        small &= med >= SATELLITE_DEPTH_MM
    if keep.any() and small.any():
        near = ndi.distance_transform_edt(~keep[lab], sampling=sp) <= SATELLITE_MM
        sat = np.zeros(n + 1, bool)
        sat[np.unique(lab[near & small[lab]])] = True
        sat &= small
        notes["satellites"] = int(np.count_nonzero(sat))
        keep |= sat
    return keep[lab]


def boxes_around(mask: np.ndarray, sp: np.ndarray, margin_mm: float | None = None) -> list[np.ndarray]:
    """One box (boolean array) per connected component of ``mask``, grown by ``margin_mm``;
    overlapping boxes are merged.  Sorted by position (deterministic)."""
    margin_mm = AUTO_BOX_MM if margin_mm is None else margin_mm
    lab, n = ndi.label(mask)
    spans = []
    for sl in ndi.find_objects(lab):
        spans.append([(s.start, s.stop) for s in grow_box(sl, mask.shape, sp, margin_mm)])
    merged = True
    while merged:
        merged = False
        for i in range(len(spans)):
            for j in range(i + 1, len(spans)):
                a, b = spans[i], spans[j]
                if all(x0 < y1 and y0 < x1 for (x0, x1), (y0, y1) in zip(a, b)):
                    spans[i] = [(min(x0, y0), max(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b)]
                    del spans[j]
                    merged = True
                    break
            if merged:
                break
    out = []
    for span in sorted(spans):
        m = np.zeros(mask.shape, bool)
        m[tuple(slice(a, b) for a, b in span)] = True
        out.append(m)
    return out


# ------------------------------------------------------------------ non-enhancing rim

#: peritumoural extension (no FLAIR/T2): robust SDs above the box's median ...
Z_EXTEND = 2.0
#: ... at most this far from the enhancing lesion
EXTEND_MM = 5.0


def extend_rim(z: np.ndarray, lesion: np.ndarray, region: np.ndarray, sp: np.ndarray, notes: dict[str, Any],
               *, reference_z: float = 0.0) -> np.ndarray:
    """Faint hyperintensity around an enhancing lesion (non-enhancing tumour / oedema seen on
    T1post alone): connected voxels within EXTEND_MM whose in-plane median-filtered z is at
    least Z_EXTEND and at most one SD below the upper bound of the brightest normal tissue
    (``reference_z``, see :class:`RoiLesion`); returns the rim without the lesion."""
    if not lesion.any():
        return lesion
    crop = grow_box(bbox(lesion), lesion.shape, sp, EXTEND_MM + 2.0)
    les, reg, zc = lesion[crop], region[crop], z[crop]
    fp = _inplane_footprint(sp, SMOOTH_MM)
    zs = ndi.median_filter(zc, footprint=fp, mode="nearest") if fp.sum() > 1 else zc
    near = ndi.distance_transform_edt(~les, sampling=sp) <= EXTEND_MM
    t = max(Z_EXTEND, reference_z - 1.0)
    grown = keep_touching((reg & near & (zs >= t)) | les, les)
    grown = ndi.binary_opening(grown, ball(sp, OPEN_MM)) | les
    out = np.zeros_like(lesion)
    out[crop] = grown & ~les
    notes["extension_threshold_smoothed_z"] = t
    return out
