"""Glioma sub-regions from FLAIR (or T2) and contrast-enhanced T1 (arrays ``[z, y, x]``).

Inputs are robust z-maps (:func:`twinflow.segment.lesion.robust_z` over the brain mask), so
the method does not care whether the images are in scanner units or intensity-normalised
with negative values.

1. **Whole-tumour hyperintensity.**  Candidates are FLAIR z above a threshold ``t``; the
   lesion is the largest connected component (plus any other component at least
   :data:`SECONDARY_FRACTION` of it: multifocal disease).  ``t`` is then moved to the
   lesion's half maximum, half-way between the normal brain (z = 0) and the lesion's median
   z, and the selection is repeated until ``t`` settles (2-4 rounds).  Half-maximum
   contouring puts the boundary where the partial-volume mix is 50 % lesion, whatever the
   lesion's own contrast.
2. **Enhancing tumour.**  Oedema is T1c-dark or iso, enhancing tumour T1c-bright: inside the
   FLAIR lesion the T1c z-values are split by a two-component Gaussian mixture (Bayes
   boundary).  Enhancement is declared present only when the bright component stands
   :data:`ENH_MIN_SEPARATION` low-class SDs above the dark one and its mean is
   :data:`ENH_MIN_Z` above normal brain (else: non-enhancing lesion).  An enhancing rim may
   lie outside the FLAIR abnormality: within :data:`RIM_MM` of it, voxels also count when
   they are brighter than the :data:`NORMAL_PERCENTILE` th percentile of distant brain
   (normal white matter, which is T1c-brighter than oedema, stays out) and connected to the
   enhancement inside.  An opening of :data:`ENH_OPEN_MM` removes single-voxel noise.
3. **Tumour core.**  The enhancing mask closed by :data:`CORE_CLOSE_MM` and hole-filled (3D,
   then per slice in every plane, or per acquired slice for thick slices): the enclosed
   non-enhancing part is necrosis / non-enhancing core (twinflow label 3).
4. **Whole tumour** = hyperintensity plus core, holes filled; what is not core is label 2.

Constants are radiological sizes or multiples of the normal tissue's spread; they were
chosen on the three BraTS 2013 cases in ``../shared/data`` and checked leave-one-out
(``benchmarks/segmentation.py --loo``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

from twinflow.segment.lesion import ball, bbox, fill_holes, gmm2, grow_box, label_components, keep_touching

__all__ = ["GliomaMasks", "segment_glioma", "hyperintense_lesion", "enhancing_in_lesion"]

#: first FLAIR z threshold of the half-maximum iteration
T_START = 2.0
#: bounds of the FLAIR threshold (z): never into normal-tissue noise, never above obvious oedema
T_MIN, T_MAX = 1.25, 3.0
#: a further hyperintense component is kept when at least this fraction of the largest
SECONDARY_FRACTION = 0.10
#: enhancing: bright mixture component at least this many dark-class SDs above the dark one
ENH_MIN_SEPARATION = 3.0
#: enhancing: bright component mean at least this many robust SDs above normal brain
ENH_MIN_Z = 1.0
#: enhancing rim searched up to this far outside the FLAIR lesion
RIM_MM = 5.0
#: ... where it must beat this percentile of brain farther than FAR_MM from the lesion
NORMAL_PERCENTILE = 98.0
FAR_MM = 10.0
#: opening of the enhancing mask (noise)
ENH_OPEN_MM = 1.0
#: closing that joins an enhancing rim around its necrotic core
CORE_CLOSE_MM = 3.0
#: work in a box this much larger than the lesion (speed; all operations are local)
CROP_MM = 15.0


class GliomaMasks(dict):
    """``{"whole", "enhancing", "core"}`` boolean arrays on the input grid."""


def _select(cand: np.ndarray, prefer: np.ndarray | None) -> np.ndarray:
    """Largest component, other components >= SECONDARY_FRACTION of it, and (when given)
    components overlapping ``prefer`` (an ROI core or a previous visit's tumour)."""
    lab, sizes = label_components(cand)
    if sizes.max(initial=0) == 0:
        return np.zeros_like(cand)
    keep = sizes >= SECONDARY_FRACTION * sizes.max()
    if prefer is not None:
        ids = np.unique(lab[prefer & cand])
        keep[ids] = True
    keep[0] = False
    return keep[lab]


def hyperintense_lesion(zh: np.ndarray, search: np.ndarray, notes: dict[str, Any], *,
                        prefer: np.ndarray | None = None, min_voxels: float = 0.0) -> np.ndarray:
    """Step 1: FLAIR/T2 lesion by iterated half-maximum thresholding (see module doc)."""
    t = T_START
    lesion = np.zeros_like(search)
    history = []
    for _ in range(10):
        cand = search & (zh > t)
        lesion = _select(cand, prefer)
        if lesion.sum() < max(min_voxels, 1):
            lesion[:] = False
            break
        t_new = float(np.clip(0.5 * np.median(zh[lesion]), T_MIN, T_MAX))
        history.append(round(t, 3))
        if abs(t_new - t) < 0.02:
            break
        t = t_new
    notes["hyperintensity_threshold_z"] = t
    notes["hyperintensity_threshold_rounds"] = history
    return lesion


def enhancing_in_lesion(ze: np.ndarray, lesion: np.ndarray, domain: np.ndarray, sp: np.ndarray,
                        notes: dict[str, Any]) -> np.ndarray:
    """Step 2: enhancing tumour inside (and in a rim around) the FLAIR lesion."""
    mix = gmm2(ze[lesion])
    if mix is None:
        notes["enhancing_decision"] = "not assessed (lesion too small or uniform)"
        return np.zeros_like(lesion)
    notes["enhancement_mixture"] = mix.as_dict()
    if mix.separation < ENH_MIN_SEPARATION or mix.mean[1] < ENH_MIN_Z:
        notes["enhancing_decision"] = (f"none: bright T1c component {mix.separation:.2f} SD above the lesion's dark one "
                                f"(need {ENH_MIN_SEPARATION}), mean z {mix.mean[1]:.2f} (need {ENH_MIN_Z})")
        return np.zeros_like(lesion)
    dist = ndi.distance_transform_edt(~lesion, sampling=sp)
    rim = domain & ~lesion & (dist <= RIM_MM)
    far = domain & (dist > FAR_MM)
    t_in = mix.threshold
    t_rim = max(t_in, float(np.percentile(ze[far], NORMAL_PERCENTILE))) if far.any() else t_in
    inside = lesion & (ze > t_in)
    enh = keep_touching(inside | (rim & (ze > t_rim)), inside)
    enh = ndi.binary_opening(enh, ball(sp, ENH_OPEN_MM)) if enh.any() else enh
    notes.update({"enhancing_decision": "T1c mixture split inside the FLAIR lesion", "enhancing_threshold_z": t_in,
                  "enhancing_rim_threshold_z": t_rim})
    return enh


def segment_glioma(zh: np.ndarray | None, ze: np.ndarray | None, domain: np.ndarray, sp: np.ndarray,
                   notes: dict[str, Any], *, search: np.ndarray | None = None, prefer: np.ndarray | None = None,
                   min_voxels: float = 0.0) -> GliomaMasks:
    """Whole tumour, enhancing tumour and tumour core from FLAIR/T2 z (``zh``) and
    enhancement z (``ze``, may be None) inside ``domain`` (brain mask).  ``search`` limits
    where the lesion may be (an ROI), ``prefer`` marks components to keep whatever their size."""
    empty = np.zeros_like(domain)
    out = GliomaMasks(whole=empty, enhancing=empty.copy(), core=empty.copy())
    if zh is None:
        return out
    region = domain if search is None else domain & search
    lesion = hyperintense_lesion(zh, region, notes, prefer=prefer, min_voxels=min_voxels)
    if not lesion.any():
        return out
    # all further steps are local: crop for speed
    box = grow_box(bbox(lesion), lesion.shape, sp, CROP_MM + FAR_MM)
    les, dom = lesion[box], domain[box]
    enh = np.zeros_like(les)
    if ze is not None:
        enh_notes: dict[str, Any] = {}
        enh = enhancing_in_lesion(ze[box], les, dom, sp, enh_notes)
        notes.update(enh_notes)
    core = enh.copy()
    if enh.any():
        closed = ndi.binary_closing(enh, ball(sp, CORE_CLOSE_MM)) | enh
        core = fill_holes(closed, sp) & dom
    whole = fill_holes(les | core, sp) & dom
    for name, m in (("whole", whole), ("enhancing", enh), ("core", core)):
        full = np.zeros_like(domain)
        full[box] = m
        out[name] = full
    return out
