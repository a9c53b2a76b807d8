"""Brain tumour segmentation from whatever MR series a visit has.

Label convention (twinflow): 0 background, 1 enhancing tumour, 2 non-enhancing tumour /
oedema, 3 necrosis.  BraTS label files are converted by :func:`convert_labels`.

Method (details and measured accuracy in ``docs/segmentation.md``)
-----------------------------------------------------------------
1. **Grid.**  The reference grid is the first present of T1post, FLAIR, T2, T1; other series
   are resampled onto it (linear) when their grid differs.
2. **Brain mask.**  A given mask is used as is.  Otherwise one is estimated from the
   reference image: 3-class Otsu inside the head, the two middle classes (dark bone/air
   and bright fat removed), eroded by :data:`BRAIN_ERODE_MM` to cut the brain from the
   scalp, largest component, dilated back, holes filled.
3. **Bias field.**  N4 (SimpleITK) on each magnitude series inside the brain mask, on a
   grid shrunk to about :data:`N4_GRID_MM`.  ADC is quantitative and is not corrected.
4. **Evidence maps.**  Robust z-scores against the brain's own intensity distribution
   (median and 1.4826 x MAD over the brain mask, so a tumour of up to a few tens of percent
   of the brain hardly moves them):
   ``enhancement`` = z of (T1post / median - T1 / median) when both exist, else z of T1post;
   ``hyperintensity`` = z of FLAIR (else T2).
5. **Detection.**  Seeds where an evidence map exceeds :data:`Z_SEED`.  Each seed component
   grows (hysteresis / region growing) over the connected voxels above its own half-maximum
   level ``max(Z_GROW, 0.5 x median z of the seed)`` -- the boundary between lesion and
   normal tissue is placed half-way between them, as in half-maximum contouring.
   With an ROI (or inside the search region around a previous visit's tumour) the
   threshold is instead Otsu's split of the evidence inside that region (never below
   :data:`Z_GROW`), because the region is known to contain tumour and background.
6. **Clean-up.**  Opening of radius :data:`OPEN_MM` removes vessels and thin dura; components
   smaller than :data:`MIN_LESION_ML` (about a 10 mm sphere, the RANO measurable-disease
   size) are dropped in automatic mode (inside an ROI only specks below
   :data:`MIN_SPECK_ML`); closing of radius :data:`CLOSE_MM` and hole filling (3D and per
   acquired slice) recover a necrotic core enclosed by an enhancing rim.
7. **Labels.**  1 = enhancing; enclosed non-enhancing voxels darker than normal brain on
   T1post = 3 (necrosis), other enclosed voxels = 2; FLAIR/T2 hyperintensity connected to the
   tumour (or itself a lesion >= :data:`MIN_LESION_ML`) = 2.

All millimetre sizes are converted to voxels per axis, so the method does not depend on the
voxel size; no constant was fitted to any test image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from twinflow.errors import InputError

__all__ = [
    "LABEL_ENHANCING",
    "LABEL_NONENHANCING",
    "LABEL_NECROSIS",
    "LABEL_CONVENTIONS",
    "SegmentationResult",
    "segment_tumour",
    "estimate_brain_mask",
    "score",
    "convert_labels",
    "convert_label_image",
    "parse_roi",
    "roi_mask",
    "overlay_png",
]

LABEL_ENHANCING = 1
LABEL_NONENHANCING = 2
LABEL_NECROSIS = 3
LABEL_NAMES = {LABEL_ENHANCING: "enhancing", LABEL_NONENHANCING: "nonenhancing_oedema", LABEL_NECROSIS: "necrosis"}

#: accepted values of ``label_convention``
LABEL_CONVENTIONS = ("twinflow", "brats", "brats2013", "brats2021", "brats2023")

# ---- method constants (anatomical / radiological sizes, not fitted to any image) --------
#: erosion that separates brain from scalp when no brain mask is given (skull + CSF ~ 5-8 mm)
BRAIN_ERODE_MM = 6.0
#: automatic mode with an *estimated* brain mask: a component whose median depth below the
#: mask surface is less than this is taken for skull-strip leftovers (dura, sinus, scalp)
SURFACE_MM = 2.0 * BRAIN_ERODE_MM
#: N4 works on a grid of about this spacing (bias fields are smooth over centimetres)
N4_GRID_MM = 6.0
#: N4 iterations per fitting level
N4_ITERATIONS = (20, 20, 20)
#: robust z above which a voxel seeds a lesion (normal tissue is ~1 % above 2.3 on FLAIR)
Z_SEED = 3.0
#: robust z floor of region growing
Z_GROW = 2.0
#: opening radius removing vessels, dura and noise specks
OPEN_MM = 1.5
#: closing radius bridging heterogeneous enhancement
CLOSE_MM = 3.0
#: smallest lesion kept in fully automatic mode (10 mm sphere ~ 0.52 ml: RANO measurable)
MIN_LESION_ML = 0.5
#: smallest component kept inside an ROI / prior region
MIN_SPECK_ML = 0.05
#: search margin around the previous visit's tumour
PRIOR_MARGIN_MM = 15.0
#: a lesion component must contain a ball of this radius (vessels are thinner)
BLOB_MM = 3.0
#: median-filter radius (noise) of the evidence used for the peritumoural extension
SMOOTH_MM = 1.0
#: peritumoural extension: robust SDs above the background level of the search region
Z_EXTEND = 2.0
#: peritumoural extension: at most this far from the enhancing core
EXTEND_MM = 5.0

_ALIASES = {
    "t1post": "T1post", "t1c": "T1post", "t1ce": "T1post", "t1gd": "T1post", "t1_gd": "T1post",
    "t1_post": "T1post", "t1contrast": "T1post",
    "t1": "T1", "t1pre": "T1", "t1_pre": "T1", "t1w": "T1",
    "flair": "FLAIR", "t2flair": "FLAIR", "t2_flair": "FLAIR",
    "t2": "T2", "t2w": "T2",
    "adc": "ADC",
}


# ----------------------------------------------------------------------------- results


@dataclass
class SegmentationResult:
    """Output of :func:`segment_tumour`.

    ``label`` is what the model uses (the expert label when one was given, else the automatic
    one); ``automatic`` is always the automatic result; ``scores`` compares them when an expert
    label was given.  ``notes`` records how the result was obtained (JSON-serialisable).
    """

    label: sitk.Image
    automatic: sitk.Image
    brain_mask: sitk.Image
    volumes_ml: dict[str, float]
    automatic_volumes_ml: dict[str, float]
    source: str  # "automatic" | "roi" | "prior" | "expert"
    notes: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] | None = None

    def qc(self) -> dict[str, Any]:
        """QC record (no paths, no identifiers)."""
        out: dict[str, Any] = {
            "label_source": self.source,
            "volumes_ml": self.volumes_ml,
            "automatic_volumes_ml": self.automatic_volumes_ml,
            "label_convention": "1=enhancing, 2=non-enhancing/oedema, 3=necrosis",
            "method": self.notes,
        }
        if self.scores is not None:
            out["automatic_vs_expert"] = self.scores
        return out


# ----------------------------------------------------------------------------- helpers


def _canonical_series_name(name: str) -> str:
    key = re.sub(r"[\s\-]", "", name).lower()
    return _ALIASES.get(key, name)


def _direction3(img: sitk.Image) -> np.ndarray:
    return np.asarray(img.GetDirection(), dtype=float).reshape(3, 3)


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    if a.GetSize() != b.GetSize():
        return False
    if not np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=1e-4, atol=1e-6):
        return False
    if not np.allclose(_direction3(a), _direction3(b), atol=1e-4):
        return False
    tol = 0.01 * float(min(min(a.GetSpacing()), min(b.GetSpacing())))
    return bool(np.max(np.abs(np.subtract(a.GetOrigin(), b.GetOrigin()))) <= tol)


def _on_grid(img: sitk.Image, ref: sitk.Image, *, label: bool) -> sitk.Image:
    if img.GetDimension() != 3:
        raise ValueError(f"segmentation needs 3D images, got {img.GetDimension()}D")
    if _same_grid(img, ref):
        out = sitk.Image(img)
        out.CopyInformation(ref)
        return out
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    ptype = img.GetPixelID() if label else sitk.sitkFloat32
    src = img if label else sitk.Cast(img, sitk.sitkFloat32)
    return sitk.Resample(src, ref, sitk.Transform(), interp, 0, ptype)


def _arr(img: sitk.Image) -> np.ndarray:
    """[z, y, x] float64 copy."""
    return sitk.GetArrayFromImage(img).astype(np.float64)


def _spacing_zyx(img: sitk.Image) -> np.ndarray:
    return np.asarray(img.GetSpacing(), dtype=float)[::-1]


def _ball(spacing_zyx: np.ndarray, r_mm: float) -> np.ndarray:
    """Ellipsoidal structuring element of physical radius ``r_mm`` (at least the centre)."""
    r = np.floor(r_mm / spacing_zyx + 1e-6).astype(int)
    grids = np.ogrid[tuple(slice(-k, k + 1) for k in r)]
    d = sum((g * s / r_mm) ** 2 for g, s in zip(grids, spacing_zyx)) if r_mm > 0 else 0
    return np.asarray(d <= 1.0 + 1e-9)


def _robust_z(a: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float, float]:
    v = a[mask]
    med = float(np.median(v))
    scale = 1.4826 * float(np.median(np.abs(v - med)))
    if not scale > 0:
        scale = float(np.std(v)) or 1.0
    return (a - med) / scale, med, scale


def _otsu(values: np.ndarray, bins: int = 128) -> float:
    """Otsu's threshold of a 1-D sample (deterministic histogram version)."""
    values = values[np.isfinite(values)]
    if values.size < 2 or values.min() == values.max():
        return float(values.max()) if values.size else 0.0
    hist, edges = np.histogram(values, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m = np.cumsum(hist * centres)
    mu0 = m / np.maximum(w0, 1)
    mu1 = (m[-1] - m) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    k = int(np.argmax(between[:-1]))
    return float(edges[k + 1])


def _fill_holes(mask: np.ndarray, slice_axis: int) -> np.ndarray:
    """3D hole filling, then per acquired slice (thick-slice tumours are open in 3D)."""
    out = ndi.binary_fill_holes(mask)
    moved = np.moveaxis(out, slice_axis, 0).copy()
    for i in range(moved.shape[0]):
        if moved[i].any():
            moved[i] = ndi.binary_fill_holes(moved[i])
    return np.moveaxis(moved, 0, slice_axis)


def _slice_axis_zyx(spacing_zyx: np.ndarray) -> int:
    """Array axis of the acquired slices (the coarsest spacing; z when isotropic)."""
    k = int(np.argmax(spacing_zyx))
    return k if spacing_zyx[k] > 1.2 * np.min(spacing_zyx) else 0


def _remove_small(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[lab]


def _voxel_ml(img: sitk.Image) -> float:
    return float(np.prod(img.GetSpacing())) / 1000.0


def _to_image(a: np.ndarray, ref: sitk.Image, pixel=sitk.sitkUInt8) -> sitk.Image:
    img = sitk.GetImageFromArray(np.ascontiguousarray(a.astype(np.uint8 if pixel == sitk.sitkUInt8 else np.float32)))
    img.CopyInformation(ref)
    return img


def _volumes(lab: np.ndarray, voxel_ml: float) -> dict[str, float]:
    out = {f"{LABEL_NAMES[k]}_ml": float(np.count_nonzero(lab == k)) * voxel_ml for k in sorted(LABEL_NAMES)}
    out["whole_tumour_ml"] = float(np.count_nonzero(lab > 0)) * voxel_ml
    out["tumour_core_ml"] = float(np.count_nonzero((lab == LABEL_ENHANCING) | (lab == LABEL_NECROSIS))) * voxel_ml
    return out


# ------------------------------------------------------------------------- brain mask


def estimate_brain_mask(img: sitk.Image, *, erode_mm: float = BRAIN_ERODE_MM) -> sitk.Image:
    """Rough skull strip of a T1-weighted (or FLAIR/T2) head image; uint8 mask on its grid.

    Intended for a bare image with no brain mask (e.g. a single contrast T1); a mask from
    a dedicated tool (FSL BET, SynthStrip, HD-BET) is better and is used when given.
    """
    a = _arr(img)
    sp = _spacing_zyx(img)
    f = sitk.Cast(img, sitk.sitkFloat32)
    classes = sitk.GetArrayFromImage(sitk.OtsuMultipleThresholds(f, 3, 0, 256))
    tissue = (classes >= 1) & (classes <= 2)
    mask = np.zeros_like(tissue)
    for r in (erode_mm, erode_mm / 2.0, 0.0):  # fall back to smaller erosions on tiny heads
        er = ndi.binary_erosion(tissue, _ball(sp, r)) if r > 0 else tissue
        lab, n = ndi.label(er)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        core = lab == int(np.argmax(sizes))
        mask = (ndi.binary_dilation(core, _ball(sp, r)) & tissue) if r > 0 else core
        break
    mask = _fill_holes(mask, _slice_axis_zyx(sp))
    if a.size and not mask.any():
        mask = a > np.percentile(a, 50)
    return _to_image(mask, img)


# ---------------------------------------------------------------------------- N4


def _n4(img: sitk.Image, mask: np.ndarray) -> sitk.Image:
    """N4 bias-field correction inside ``mask`` on a ~N4_GRID_MM grid; float32 on img's grid."""
    f = sitk.Cast(img, sitk.sitkFloat32)
    a = sitk.GetArrayViewFromImage(f)
    lo = float(np.min(a[mask])) if mask.any() else 0.0
    shift = 1.0 - lo if lo <= 0 else 0.0  # N4 works on log intensities: keep them positive
    if shift:
        f = f + shift
    m = _to_image(mask, img)
    shrink = [max(1, int(round(N4_GRID_MM / s))) for s in img.GetSpacing()]
    fs = sitk.Shrink(f, shrink)
    ms = sitk.Shrink(m, shrink)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(list(N4_ITERATIONS))
    n4.SetNumberOfThreads(1)  # deterministic
    try:
        n4.Execute(fs, ms)
        log_bias = n4.GetLogBiasFieldAsImage(f)
    except RuntimeError:
        return sitk.Cast(img, sitk.sitkFloat32)
    out = f / sitk.Exp(log_bias)
    if shift:
        out = out - shift
    return sitk.Cast(out, sitk.sitkFloat32)


# ------------------------------------------------------------------------------- ROI


def parse_roi(text: str | Sequence[float] | None) -> tuple[float, ...] | None:
    """Parse an ``roi`` cell ``x0,y0,z0,x1,y1,z1`` (mm, DICOM/ITK patient space LPS).

    The two corners may be given in any order; empty / None -> None.  Raises ValueError
    with a readable message on anything else (the sheet layer wraps it in InputError).
    """
    if text is None:
        return None
    if isinstance(text, str):
        s = text.strip()
        if not s or s.lower() in ("na", "nan", "none"):
            return None
        parts = [p for p in re.split(r"[,;\s]+", s) if p]
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"roi {text!r} is not six numbers x0,y0,z0,x1,y1,z1 (mm, LPS)") from None
    else:
        vals = [float(v) for v in text]
    if len(vals) != 6 or not all(np.isfinite(vals)):
        raise ValueError(f"roi {text!r} is not six finite numbers x0,y0,z0,x1,y1,z1 (mm, LPS)")
    lo = [min(vals[i], vals[i + 3]) for i in range(3)]
    hi = [max(vals[i], vals[i + 3]) for i in range(3)]
    if any(h - l <= 0 for l, h in zip(lo, hi)):
        raise ValueError(f"roi {text!r} has zero extent along an axis")
    return tuple(lo + hi)


def _physical_points_zyx(img: sitk.Image) -> np.ndarray:
    """LPS physical coordinates (mm) of every voxel centre, shape (z, y, x, 3)."""
    size = img.GetSize()
    k, j, i = np.meshgrid(np.arange(size[2]), np.arange(size[1]), np.arange(size[0]), indexing="ij")
    idx = np.stack([i, j, k], axis=-1).astype(float)
    m = _direction3(img) @ np.diag(img.GetSpacing())
    return idx @ m.T + np.asarray(img.GetOrigin())


def roi_mask(reference: sitk.Image, roi_lps_mm: Sequence[float]) -> sitk.Image:
    """uint8 mask of the voxels of ``reference`` whose centres lie in the LPS box.

    ITK physical space is LPS, so the box is compared with ITK physical points directly,
    whatever the voxel order (a canonical RAS+ NIfTI has direction diag(-1,-1,1): its
    NIfTI world point (x, y, z) is LPS (-x, -y, z)).
    """
    box = parse_roi(roi_lps_mm)
    if box is None:
        raise ValueError("empty roi")
    pts = _physical_points_zyx(reference)
    lo, hi = np.asarray(box[:3]), np.asarray(box[3:])
    inside = np.all((pts >= lo) & (pts <= hi), axis=-1)
    return _to_image(inside, reference)


# ----------------------------------------------------------------------------- labels


def convert_labels(arr: np.ndarray, convention: str = "twinflow") -> np.ndarray:
    """Map a label array to the twinflow convention (1 enh, 2 non-enh/oedema, 3 necrosis).

    ``convention``:
      * ``twinflow``  values must be in {0,1,2,3}; returned unchanged (uint8).
      * ``brats2021`` 1 = necrotic / non-enhancing core -> 3, 2 = oedema -> 2, 4 = enhancing -> 1
        (BraTS 2017-2021; values {0,1,2,4}).
      * ``brats2023`` 1 -> 3, 2 -> 2, 3 = enhancing -> 1 (BraTS 2023+; values {0,1,2,3}).
      * ``brats2013`` 1 necrosis -> 3, 2 oedema -> 2, 3 non-enhancing tumour -> 3 (tumour core,
        as BraTS 2017+ merged it into label 1), 4 enhancing -> 1 (BraTS 2012-2016).
      * ``brats``     brats2021 or brats2023, told apart by the values present: 4 means the
        older files, 3 the newer ones; a file with both 3 and 4 is refused (that is the
        pre-2017 scheme, where 3 was non-enhancing tumour: say brats2013).
    Raises ValueError naming the offending values.
    """
    a = np.asarray(arr)
    if not np.all(np.isfinite(a)) or (np.issubdtype(a.dtype, np.floating) and not np.array_equal(a, np.round(a))):
        raise ValueError("label map has non-integer values")
    a = np.round(a).astype(np.int64)
    present = set(np.unique(a).tolist())
    conv = convention.lower()
    if conv not in LABEL_CONVENTIONS:
        raise ValueError(f"unknown label convention {convention!r}; expected one of {', '.join(LABEL_CONVENTIONS)}")
    if conv == "brats":
        if {3, 4} <= present:
            raise ValueError("BraTS label map has both 3 and 4 (the pre-2017 scheme, where 3 is non-enhancing "
                         "tumour): set label_convention to brats2013")
        conv = "brats2021" if 4 in present else "brats2023"
    allowed = {"twinflow": {0, 1, 2, 3}, "brats2013": {0, 1, 2, 3, 4}, "brats2021": {0, 1, 2, 4},
               "brats2023": {0, 1, 2, 3}}[conv]
    bad = sorted(present - allowed)
    if bad:
        raise ValueError(f"label values {bad} are not allowed in the {conv} convention (allowed {sorted(allowed)})")
    if conv == "twinflow":
        return a.astype(np.uint8)
    lut = np.zeros(5, dtype=np.uint8)
    lut[1] = LABEL_NECROSIS
    lut[2] = LABEL_NONENHANCING
    if conv == "brats2013":
        lut[3] = LABEL_NECROSIS  # non-enhancing tumour: part of the tumour core, as in BraTS 2017+ label 1
        lut[4] = LABEL_ENHANCING
    else:
        lut[4 if conv == "brats2021" else 3] = LABEL_ENHANCING
    return lut[a]


def convert_label_image(img: sitk.Image, convention: str = "twinflow") -> sitk.Image:
    out = sitk.GetImageFromArray(convert_labels(sitk.GetArrayViewFromImage(img), convention))
    out.CopyInformation(img)
    return out


# ----------------------------------------------------------------------------- scoring


def _dice(a: np.ndarray, b: np.ndarray) -> float | None:
    na, nb = int(np.count_nonzero(a)), int(np.count_nonzero(b))
    if na + nb == 0:
        return None  # undefined: both empty
    return 2.0 * int(np.count_nonzero(a & b)) / (na + nb)


def score(auto: sitk.Image | np.ndarray, expert: sitk.Image | np.ndarray, *, voxel_ml: float | None = None) -> dict[str, Any]:
    """Dice and volume difference of an automatic label map against an expert one.

    Regions: ``whole_tumour`` (> 0), ``tumour_core`` (1 or 3), ``enhancing`` (1) and each
    label.  Dice is None where both maps are empty.  Volume differences are auto - expert
    (ml, and % of expert; None if the expert region is empty).  Images must share a grid.
    """
    if isinstance(auto, sitk.Image) or isinstance(expert, sitk.Image):
        ref = auto if isinstance(auto, sitk.Image) else expert
        if isinstance(auto, sitk.Image) and isinstance(expert, sitk.Image) and not _same_grid(auto, expert):
            raise ValueError("automatic and expert labels are on different grids")
        voxel_ml = _voxel_ml(ref) if voxel_ml is None else voxel_ml
    a = sitk.GetArrayViewFromImage(auto) if isinstance(auto, sitk.Image) else np.asarray(auto)
    e = sitk.GetArrayViewFromImage(expert) if isinstance(expert, sitk.Image) else np.asarray(expert)
    if a.shape != e.shape:
        raise ValueError(f"label shapes differ: {a.shape} vs {e.shape}")
    if voxel_ml is None:
        raise ValueError("voxel_ml is needed for numpy inputs")
    regions = {
        "whole_tumour": (a > 0, e > 0),
        "tumour_core": (np.isin(a, (1, 3)), np.isin(e, (1, 3))),
        "enhancing": (a == 1, e == 1),
        "nonenhancing_oedema": (a == 2, e == 2),
        "necrosis": (a == 3, e == 3),
    }
    out: dict[str, Any] = {}
    for name, (ra, re_) in regions.items():
        va = int(np.count_nonzero(ra)) * voxel_ml
        ve = int(np.count_nonzero(re_)) * voxel_ml
        out[name] = {
            "dice": _dice(ra, re_),
            "auto_ml": va,
            "expert_ml": ve,
            "volume_difference_ml": va - ve,
            "volume_difference_pct": (100.0 * (va - ve) / ve) if ve > 0 else None,
        }
    return out


# ------------------------------------------------------------------------------ core


def _grow(evidence: np.ndarray, allowed: np.ndarray, seeds: np.ndarray, floor: float) -> np.ndarray:
    """Hysteresis: each seeded region grows over connected voxels above its half-maximum.

    Candidates are the connected voxels above ``floor``; inside each candidate that holds
    seeds the boundary is ``max(floor, 0.5 x median seed evidence)`` (half-way between the
    lesion and the brain median, which is 0 on a robust z scale).
    """
    cand = allowed & (evidence >= floor)
    lab, n = ndi.label(cand)
    out = np.zeros_like(seeds)
    if n == 0 or not seeds.any():
        return out
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        comp = lab[sl] == i
        s = seeds[sl] & comp
        if not s.any():
            continue
        e = evidence[sl]
        t = max(floor, 0.5 * float(np.median(e[s])))
        sub = comp & (e >= t)
        sl_lab, _ = ndi.label(sub)
        ids = np.unique(sl_lab[s & sub])
        out[sl] |= np.isin(sl_lab, ids[ids > 0])
    return out


def _smooth(evidence: np.ndarray, sp: np.ndarray, radius_mm: float) -> np.ndarray:
    """Edge-preserving median filter over a ball of ``radius_mm`` (in-plane for thick slices)."""
    fp = _ball(sp, radius_mm)
    axis = _slice_axis_zyx(sp)
    if sp[axis] > 2.0 * np.min(sp) and fp.shape[axis] > 1:
        fp = np.take(fp, [fp.shape[axis] // 2], axis=axis)
    if fp.sum() <= 1:
        return evidence
    return ndi.median_filter(evidence, footprint=fp, mode="nearest")


def _blobs(mask: np.ndarray, sp: np.ndarray) -> np.ndarray:
    """Components of ``mask`` that contain a ball of radius BLOB_MM (drops vessels, dura)."""
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    core = ndi.binary_opening(mask, _ball(sp, BLOB_MM))
    keep = np.zeros(n + 1, dtype=bool)
    keep[np.unique(lab[core])] = True
    keep[0] = False
    return keep[lab]


def _detect(
    evidence: np.ndarray,
    allowed: np.ndarray,
    guided: bool,
    sp: np.ndarray,
    voxel_ml: float,
    min_ml: float,
    notes: dict[str, Any],
    name: str,
) -> np.ndarray:
    """Lesion core of one evidence map.

    Automatic: seeds above Z_SEED grow to their half-maximum against the brain median (0).
    Guided (``allowed`` is an ROI or prior region): seeds above Otsu's split inside the
    region, grown to half-way between the seeds' median and the region's median.
    """
    if not allowed.any():
        return allowed
    if guided:
        otsu = max(Z_GROW, _otsu(evidence[allowed]))
        seeds = allowed & (evidence >= otsu)
        if not seeds.any():
            notes[f"{name}_rule"] = "otsu_in_region: no seeds"
            return seeds
        lesion = float(np.median(evidence[seeds]))
        background = float(np.median(evidence[allowed]))
        t = max(Z_GROW, 0.5 * (lesion + background))
        mask = allowed & (evidence >= t)
        notes.update({f"{name}_rule": "otsu seeds in region, half-maximum boundary",
                      f"{name}_seed_z": otsu, f"{name}_threshold_z": t})
    else:
        seeds = allowed & (evidence >= Z_SEED)
        seeds = ndi.binary_opening(seeds, _ball(sp, OPEN_MM)) if seeds.any() else seeds
        mask = _grow(evidence, allowed, seeds, Z_GROW)
        notes.update({f"{name}_rule": "half-maximum hysteresis", f"{name}_seed_z": Z_SEED})
    if mask.any():
        mask = ndi.binary_opening(mask, _ball(sp, OPEN_MM))
    mask = _remove_small(mask, min_ml / voxel_ml)
    return _blobs(mask, sp)


def _drop_superficial(mask: np.ndarray, brain: np.ndarray, sp: np.ndarray, notes: dict[str, Any]) -> np.ndarray:
    """Drop components lying mostly within SURFACE_MM of an estimated brain-mask surface."""
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    depth = ndi.distance_transform_edt(np.pad(brain, 1), sampling=sp)[1:-1, 1:-1, 1:-1]
    med = np.asarray(ndi.median(depth, lab, index=np.arange(1, n + 1)), dtype=float)
    keep = np.concatenate([[False], med >= SURFACE_MM])
    notes["superficial_components_dropped"] = int(np.count_nonzero(~keep[1:]))
    return keep[lab]


def _extend(
    evidence: np.ndarray, core: np.ndarray, allowed: np.ndarray, sp: np.ndarray, notes: dict[str, Any]
) -> np.ndarray:
    """Peritumoural extension of a core: mildly hyperintense tissue connected to it.

    Voxels within EXTEND_MM of the core whose median-filtered evidence is Z_EXTEND
    robust SDs of single voxels above the median of the search region (the ROI, or the brain) -- the non-enhancing
    tumour / oedema seen as faint hyperintensity when no FLAIR/T2 is available.
    """
    if not core.any():
        return core
    zs = _smooth(evidence, sp, SMOOTH_MM)
    v = evidence[allowed]  # background level and spread of single voxels (not of the smoothed map)
    med = float(np.median(v))
    sd = 1.4826 * float(np.median(np.abs(v - med))) or float(np.std(v)) or 1.0
    t = med + Z_EXTEND * sd
    near = ndi.distance_transform_edt(~core, sampling=sp) <= EXTEND_MM
    cand = (allowed & near & (zs >= t)) | core
    lab, _ = ndi.label(cand)
    ids = np.unique(lab[core])
    grown = np.isin(lab, ids[ids > 0])
    grown = ndi.binary_opening(grown, _ball(sp, OPEN_MM)) | core
    notes["extension_threshold_smoothed_z"] = t
    return grown & ~core


def segment_tumour(
    images: Mapping[str, sitk.Image],
    *,
    brain_mask: sitk.Image | None = None,
    roi_lps_mm: str | Sequence[float] | None = None,
    prior_mask: sitk.Image | None = None,
    expert_label: sitk.Image | None = None,
    label_convention: str = "twinflow",
    bias_correction: bool = True,
) -> SegmentationResult:
    """Segment a brain tumour into 1 enhancing / 2 non-enhancing+oedema / 3 necrosis.

    ``images`` maps series names to 3D images (T1post/T1c/T1Gd, T1, FLAIR, T2, ADC; other
    keys are ignored).  ``roi_lps_mm`` (box x0,y0,z0,x1,y1,z1 in LPS mm) and ``prior_mask``
    (previous visit's tumour, any label image > 0) guide the search.  ``expert_label`` in
    ``label_convention`` replaces the automatic result for the model and is scored against it.
    """
    named = {_canonical_series_name(k): v for k, v in images.items() if v is not None}
    ref_name = next((n for n in ("T1post", "FLAIR", "T2", "T1") if n in named), None)
    if ref_name is None:
        raise ValueError(f"no usable series among {sorted(images)}; need T1post, FLAIR, T2 or T1")
    ref = named[ref_name]
    if ref.GetDimension() != 3:
        raise ValueError(f"{ref_name} is {ref.GetDimension()}D; segmentation needs 3D images")
    sp = _spacing_zyx(ref)
    vml = _voxel_ml(ref)
    slice_axis = _slice_axis_zyx(sp)
    notes: dict[str, Any] = {"reference_series": ref_name, "bias_correction": "N4" if bias_correction else "none"}

    # brain mask
    if brain_mask is not None:
        brain = sitk.GetArrayFromImage(_on_grid(brain_mask, ref, label=True)) > 0
        notes["brain_mask"] = "given"
    else:
        src = named.get("T1", named.get("T1post", ref))
        brain = sitk.GetArrayFromImage(estimate_brain_mask(_on_grid(src, ref, label=False))) > 0
        notes["brain_mask"] = "estimated (Otsu + erosion, largest component)"
    if not brain.any():
        raise ValueError("brain mask is empty")
    notes["brain_volume_ml"] = float(brain.sum()) * vml

    # series on the reference grid, bias corrected
    arrays: dict[str, np.ndarray] = {}
    for n in ("T1post", "T1", "FLAIR", "T2", "ADC"):
        if n not in named:
            continue
        img = _on_grid(named[n], ref, label=False)
        if bias_correction and n != "ADC":
            img = _n4(img, brain)
        arrays[n] = _arr(img)
    notes["series_used"] = sorted(arrays)

    # guidance region
    region = None
    min_ml = MIN_LESION_ML
    source = "automatic"
    if roi_lps_mm is not None and parse_roi(roi_lps_mm) is not None:
        region = sitk.GetArrayFromImage(roi_mask(ref, roi_lps_mm)) > 0
        if not (region & brain).any():
            raise ValueError("roi does not overlap the brain")
        notes["roi_lps_mm"] = list(parse_roi(roi_lps_mm))
        source = "roi"
    elif prior_mask is not None:
        prior = sitk.GetArrayFromImage(_on_grid(prior_mask, ref, label=True)) > 0
        if prior.any():
            region = ndi.distance_transform_edt(~prior, sampling=sp) <= PRIOR_MARGIN_MM
            notes["prior_margin_mm"] = PRIOR_MARGIN_MM
            source = "prior"
        else:
            notes["prior"] = "empty prior ignored"
    if region is not None:
        min_ml = MIN_SPECK_ML
    notes["min_component_ml"] = min_ml
    allowed = brain if region is None else brain & region

    # evidence
    zmaps: dict[str, np.ndarray] = {}
    if "T1post" in arrays:
        c = arrays["T1post"]
        zc, _, _ = _robust_z(c, brain)
        zmaps["T1post"] = zc
        if "T1" in arrays:
            t1 = arrays["T1"]
            d = c / max(np.median(c[brain]), 1e-6) - t1 / max(np.median(t1[brain]), 1e-6)
            zmaps["enhancement"], _, _ = _robust_z(d, brain)
            notes["enhancement"] = "T1post - T1 (each / brain median), robust z"
        else:
            zmaps["enhancement"] = zc
            notes["enhancement"] = "T1post robust z (no pre-contrast T1)"
    hyper_name = "FLAIR" if "FLAIR" in arrays else ("T2" if "T2" in arrays else None)
    if hyper_name:
        zmaps["hyper"], _, _ = _robust_z(arrays[hyper_name], brain)
        notes["oedema"] = f"{hyper_name} robust z"

    det_notes: dict[str, Any] = {}
    enh = np.zeros_like(brain)
    hyper = np.zeros_like(brain)
    estimated_mask = brain_mask is None and region is None
    def detect(z: np.ndarray, name: str) -> np.ndarray:
        found = _detect(z, allowed, region is not None, sp, vml, min_ml, det_notes, name)
        if source == "prior":  # the prior adds sensitivity near the old tumour; new growth is found anyway
            found |= _detect(z, brain, False, sp, vml, MIN_LESION_ML, det_notes.setdefault("outside_prior", {}), name)
        return found

    if "enhancement" in zmaps:
        enh = detect(zmaps["enhancement"], "enhancement")
        if estimated_mask and enh.any():
            enh = _drop_superficial(enh, brain, sp, det_notes)
    if "hyper" in zmaps:
        hyper = detect(zmaps["hyper"], "hyperintensity")
        if estimated_mask and hyper.any():
            hyper = _drop_superficial(hyper, brain, sp, det_notes)
    elif enh.any():
        # no FLAIR/T2: faint T1post hyperintensity around the enhancing core = non-enhancing tumour
        hyper = _extend(zmaps["T1post"], enh, allowed, sp, det_notes)
    notes["detection"] = det_notes

    # core: close the enhancing mask, fill holes
    label = np.zeros(brain.shape, dtype=np.uint8)
    if enh.any():
        closed = ndi.binary_closing(enh, _ball(sp, CLOSE_MM)) | enh
        core = _fill_holes(closed, slice_axis) & brain
        enclosed = core & ~enh
        zc = zmaps.get("T1post")
        label[enclosed] = LABEL_NONENHANCING
        if zc is not None:
            label[enclosed & (zc < 0.0)] = LABEL_NECROSIS
        label[enh] = LABEL_ENHANCING
    if hyper.any():
        hyper = _fill_holes(hyper, slice_axis) & brain
        if label.any():
            # hyperintense components touching the core, or lesions in their own right
            lab, n = ndi.label(hyper)
            touching = np.unique(lab[ndi.binary_dilation(label > 0) & (lab > 0)])
            keep = np.isin(lab, touching[touching > 0]) | _remove_small(hyper, min_ml / vml)
            hyper = keep
        label[(label == 0) & hyper] = LABEL_NONENHANCING
    if label.any():
        # whole tumour: close and fill once more so core and surrounding tissue are one body
        whole = label > 0
        whole = _fill_holes(ndi.binary_closing(whole, _ball(sp, CLOSE_MM)) | whole, slice_axis) & brain
        label[(label == 0) & whole] = LABEL_NONENHANCING
    if not zmaps:
        notes["warning"] = "no tumour-sensitive series (T1post, FLAIR or T2): empty segmentation"

    auto_img = _to_image(label, ref)
    auto_vol = _volumes(label, vml)
    result_label, result_vol, scores = auto_img, auto_vol, None
    if expert_label is not None:
        exp = convert_label_image(_on_grid(expert_label, ref, label=True), label_convention)
        result_label = exp
        result_vol = _volumes(sitk.GetArrayViewFromImage(exp), vml)
        scores = score(auto_img, exp)
        notes["expert_label_convention"] = label_convention
        source = "expert"
    return SegmentationResult(
        label=result_label,
        automatic=auto_img,
        brain_mask=_to_image(brain, ref),
        volumes_ml=result_vol,
        automatic_volumes_ml=auto_vol,
        source=source,
        notes=notes,
        scores=scores,
    )


# ----------------------------------------------------------------------------- overlay

_COLOURS = {1: (255, 40, 40), 2: (40, 220, 40), 3: (60, 120, 255)}


def overlay_png(image: sitk.Image, mask: sitk.Image, out_png: str | Path, *, expert: sitk.Image | None = None) -> dict[str, Any]:
    """Write a deterministic RGB PNG: label outlines over the slice with the most tumour.

    Cut across the acquired slice axis of the image (axial for isotropic data), shown in
    radiological convention like the ingest PNGs (anterior/superior up, patient's right on
    the viewer's left).  Colours: 1 red, 2 green, 3 blue; an ``expert`` label, if given, is
    outlined in yellow.  Returns {"slice_axis", "slice_index"} for the QC record.
    """
    from twinflow.io.imaging import canonicalise, png_slice_axis

    img = canonicalise(sitk.Cast(image, sitk.sitkFloat32))
    lab = canonicalise(_on_grid(mask, image, label=True))
    a = sitk.GetArrayFromImage(img).astype(np.float64)
    m = sitk.GetArrayFromImage(lab).astype(np.int64)
    ex = None if expert is None else sitk.GetArrayFromImage(canonicalise(_on_grid(expert, image, label=True))) > 0
    axis = png_slice_axis(img.GetSpacing())  # canonical axis 0..2 -> array axis 2 - axis
    arr_axis = 2 - axis
    area = (m > 0).sum(axis=tuple(i for i in range(3) if i != arr_axis))
    if ex is not None and not area.any():
        area = ex.sum(axis=tuple(i for i in range(3) if i != arr_axis))
    index = int(np.argmax(area)) if area.any() else a.shape[arr_axis] // 2
    sl = np.take(a, index, axis=arr_axis)[::-1, ::-1]
    ms = np.take(m, index, axis=arr_axis)[::-1, ::-1]
    finite = a[np.isfinite(a)]
    lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    g = np.clip((sl - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(sl)
    g = np.rint(np.nan_to_num(g) * 255).astype(np.uint8)
    rgb = np.repeat(g[..., None], 3, axis=-1)
    for k, colour in _COLOURS.items():
        r = ms == k
        edge = r & ~ndi.binary_erosion(r)
        rgb[edge] = colour
    if ex is not None:
        es = np.take(ex, index, axis=arr_axis)[::-1, ::-1]
        rgb[es & ~ndi.binary_erosion(es)] = (255, 230, 0)
    from twinflow.io.png import write_png

    write_png(out_png, rgb)
    return {"slice_axis": "RAS"[axis], "slice_index": index}


def roi_from_mask(mask: sitk.Image, margin_mm: float = 0.0) -> tuple[float, ...]:
    """LPS bounding box (mm) of the voxel centres of ``mask > 0``, grown by ``margin_mm``."""
    a = sitk.GetArrayViewFromImage(mask) > 0
    if not a.any():
        raise ValueError("empty mask has no bounding box")
    pts = _physical_points_zyx(mask)[a]
    lo = pts.min(axis=0) - margin_mm
    hi = pts.max(axis=0) + margin_mm
    return tuple(float(x) for x in np.concatenate([lo, hi]))


def segmentation_error(problem: str, patient: str | None = None, path: str | None = None) -> InputError:
    """InputError for sheet-level problems (bad roi, bad label values) found at segmentation."""
    return InputError(problem, patient=patient, path=path)
