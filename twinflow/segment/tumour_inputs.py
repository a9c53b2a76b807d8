"""Inputs of tumour segmentation: series names, checks, grids, masks, ROI boxes, bias field.

Every problem with an input becomes one :class:`twinflow.errors.InputError` that names the
patient, the file (as the caller displays it) and what is wrong, with the numbers that led
there -- never a traceback.  :class:`Inputs` carries the patient id and display paths so
that deep helpers can raise such errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from twinflow.errors import InputError
from twinflow.io.imaging import direction3, same_grid as io_same_grid
from twinflow.segment.lesion import ball, fill_holes

__all__ = [
    "ALIASES",
    "canonical_series_name",
    "Inputs",
    "same_grid",
    "on_grid",
    "spacing_zyx",
    "voxel_ml",
    "to_image",
    "physical_points_zyx",
    "parse_roi",
    "roi_mask",
    "estimate_brain_mask",
    "foreground",
    "n4",
]

ALIASES = {
    "t1post": "T1post", "t1c": "T1post", "t1ce": "T1post", "t1gd": "T1post", "t1_gd": "T1post",
    "t1_post": "T1post", "t1contrast": "T1post",
    "t1": "T1", "t1pre": "T1", "t1_pre": "T1", "t1w": "T1",
    "flair": "FLAIR", "t2flair": "FLAIR", "t2_flair": "FLAIR",
    "t2": "T2", "t2w": "T2",
    "adc": "ADC",
}
#: series the method reads, in the order that picks the reference grid
SERIES = ("T1post", "FLAIR", "T2", "T1", "ADC")

#: erosion that separates brain from scalp when no brain mask is given (skull + CSF ~ 5-8 mm)
BRAIN_ERODE_MM = 6.0
#: an estimated brain mask outside this volume range (ml) is not a brain ...
BRAIN_ML_RANGE = (150.0, 3000.0)
#: ... nor is one that does not hold a ball of this radius (a brain is about 140 mm across)
BRAIN_MIN_RADIUS_MM = 20.0
#: an image whose minimum value covers at least this fraction of its voxels is skull-stripped
STRIPPED_FRACTION = 0.2
#: N4 works on a grid of about this spacing (bias fields are smooth over centimetres)
N4_GRID_MM = 6.0
#: N4 iterations per fitting level
N4_ITERATIONS = (20, 20, 20)


def canonical_series_name(name: str) -> str:
    key = re.sub(r"[\s\-]", "", str(name)).lower()
    return ALIASES.get(key, str(name))


@dataclass
class Inputs:
    """Who and what, for error messages: patient id and the display path of each input
    (keys: series names as given or canonical, ``organ_mask``, ``brain_mask``, ``label``,
    ``prior``, ``roi`` -- the sheet that holds the roi cell)."""

    patient: str | None = None
    paths: Mapping[str, str] = field(default_factory=dict)

    def path(self, key: str | None) -> str | None:
        if key is None:
            return None
        if key in self.paths:
            return str(self.paths[key])
        for k, v in self.paths.items():
            if canonical_series_name(k) == key:
                return str(v)
        return None

    def error(self, problem: str, key: str | None = None) -> InputError:
        return InputError(problem, patient=self.patient, path=self.path(key))


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    """Same dimension and, on the first three axes, the same voxel grid (:func:`twinflow.io.imaging.same_grid`)."""
    return a.GetDimension() == b.GetDimension() and a.GetSize() == b.GetSize() and io_same_grid(a, b)


def on_grid(img: sitk.Image, ref: sitk.Image, *, label: bool) -> sitk.Image:
    """``img`` on ``ref``'s grid (a copy when it is already there; else nearest / linear)."""
    if same_grid(img, ref):
        out = sitk.Image(img)
        out.CopyInformation(ref)
        return out
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    ptype = img.GetPixelID() if label else sitk.sitkFloat32
    src = img if label else sitk.Cast(img, sitk.sitkFloat32)
    return sitk.Resample(src, ref, sitk.Transform(), interp, 0, ptype)


def spacing_zyx(img: sitk.Image) -> np.ndarray:
    return np.asarray(img.GetSpacing(), dtype=float)[::-1]


def voxel_ml(img: sitk.Image) -> float:
    return float(np.prod(img.GetSpacing())) / 1000.0


def to_image(a: np.ndarray, ref: sitk.Image) -> sitk.Image:
    img = sitk.GetImageFromArray(np.ascontiguousarray(a.astype(np.uint8)))
    img.CopyInformation(ref)
    return img


def physical_points_zyx(img: sitk.Image) -> np.ndarray:
    """LPS physical coordinates (mm) of every voxel centre, shape (z, y, x, 3)."""
    size = img.GetSize()
    k, j, i = np.meshgrid(np.arange(size[2]), np.arange(size[1]), np.arange(size[0]), indexing="ij")
    idx = np.stack([i, j, k], axis=-1).astype(float)
    m = direction3(img) @ np.diag(img.GetSpacing())
    return idx @ m.T + np.asarray(img.GetOrigin())


# ------------------------------------------------------------------------------ checks


def check_image(img: Any, name: str, inp: Inputs, *, what: str = "image") -> None:
    """A 3D scalar image with a positive finite spacing and at least one finite voxel."""
    key = name
    if not isinstance(img, sitk.Image):
        raise inp.error(f"{name} is not an image (got {type(img).__name__})", key)
    dim = img.GetDimension()
    if dim != 3:
        size = "x".join(str(s) for s in img.GetSize())
        raise inp.error(f"{name} is a {dim}D {what} (size {size}); tumour segmentation needs a 3D volume "
                        "(a single slice must be stored as a 3D image with one slice and its thickness)", key)
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise inp.error(f"{name} has {img.GetNumberOfComponentsPerPixel()} values per voxel (a colour or vector "
                        f"image); a scalar {what} is needed", key)
    sp = np.asarray(img.GetSpacing(), float)
    if not (np.all(np.isfinite(sp)) and np.all(sp > 0)):
        raise inp.error(f"{name} has an invalid voxel spacing {tuple(sp.tolist())} mm", key)
    if min(img.GetSize()) < 1:
        raise inp.error(f"{name} is empty (size {img.GetSize()})", key)


def finite_array(img: sitk.Image, name: str, inp: Inputs, notes: dict[str, Any]) -> np.ndarray:
    """float64 [z, y, x] copy; NaN/inf voxels are reported and left as NaN for the caller to mask."""
    a = sitk.GetArrayFromImage(img).astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.all():
        raise inp.error(f"{name} has no finite values (all {a.size} voxels are NaN or infinite)", name)
    if bad.any():
        a[bad] = np.nan
        notes.setdefault("non_finite_voxels", {})[name] = int(bad.sum())
    return a


def check_contrast(a: np.ndarray, domain: np.ndarray, name: str, inp: Inputs, where: str) -> None:
    v = a[domain & np.isfinite(a)]
    if v.size == 0:
        raise inp.error(f"{name} has no finite values {where}", name)
    if not np.ptp(v) > 0:
        raise inp.error(f"{name} is constant ({float(v[0]):g}) {where}: there is no contrast to segment", name)


# --------------------------------------------------------------------------------- ROI


def parse_roi(text: str | Sequence[float] | None) -> tuple[float, ...] | None:
    """Parse an ``roi`` cell ``x0,y0,z0,x1,y1,z1`` (mm, DICOM/ITK patient space LPS).

    The two corners may be given in any order; empty / None -> None.  Raises ValueError
    with a readable message on anything else (the caller wraps it in InputError).
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
        try:
            vals = [float(v) for v in text]
        except (TypeError, ValueError):
            raise ValueError(f"roi {text!r} is not six numbers x0,y0,z0,x1,y1,z1 (mm, LPS)") from None
    if len(vals) != 6 or not all(np.isfinite(vals)):
        raise ValueError(f"roi {text!r} is not six finite numbers x0,y0,z0,x1,y1,z1 (mm, LPS)")
    lo = [min(vals[i], vals[i + 3]) for i in range(3)]
    hi = [max(vals[i], vals[i + 3]) for i in range(3)]
    if any(h - l <= 0 for l, h in zip(lo, hi)):
        raise ValueError(f"roi {text!r} has zero extent along an axis")
    return tuple(lo + hi)


def roi_mask(reference: sitk.Image, roi_lps_mm: Sequence[float] | str) -> sitk.Image:
    """uint8 mask of the voxels of ``reference`` whose centres lie in the LPS box.

    ITK physical space is LPS, so the box is compared with ITK physical points directly,
    whatever the voxel order (a canonical RAS+ NIfTI has direction diag(-1,-1,1): its
    NIfTI world point (x, y, z) is LPS (-x, -y, z)).  A box thinner than a voxel along an
    axis selects the voxels nearest to its centre plane along that axis (a 2 mm box on
    6.5 mm slices still selects one slice).
    """
    box = parse_roi(roi_lps_mm)
    if box is None:
        raise ValueError("empty roi")
    pts = physical_points_zyx(reference)
    lo, hi = np.asarray(box[:3]), np.asarray(box[3:])
    inside = np.all((pts >= lo) & (pts <= hi), axis=-1)
    if not inside.any():
        # thin box between voxel centres: widen each axis to half a voxel step
        step = np.abs(direction3(reference) @ np.diag(reference.GetSpacing())).max(axis=1)
        pad = np.maximum(0.0, 0.5 * step - 0.5 * (hi - lo))
        inside = np.all((pts >= lo - pad) & (pts <= hi + pad), axis=-1)
    return to_image(inside, reference)


def image_extent_lps(img: sitk.Image) -> tuple[float, ...]:
    """LPS bounding box (mm) of the voxel centres of ``img``."""
    size = img.GetSize()
    corners = [img.TransformIndexToPhysicalPoint((i, j, k)) for i in (0, size[0] - 1) for j in (0, size[1] - 1)
               for k in (0, size[2] - 1)]
    c = np.asarray(corners)
    return tuple(float(v) for v in np.concatenate([c.min(0), c.max(0)]))


# ------------------------------------------------------------------------ masks


def estimate_brain_mask(img: sitk.Image, *, erode_mm: float = BRAIN_ERODE_MM) -> sitk.Image:
    """Rough skull strip of a T1-weighted (or FLAIR/T2) head image; uint8 mask on its grid.

    An image that is already skull-stripped (at least STRIPPED_FRACTION of the voxels at its
    minimum) gives its largest non-background component.  Otherwise:
    3-class Otsu, the two middle classes (dark bone/air and bright fat removed), eroded by
    ``erode_mm`` to cut the brain from the scalp, largest component, dilated back, holes
    filled.  Intended for a bare image with no brain mask; a mask from a dedicated tool (FSL
    BET, SynthStrip, HD-BET) is better and is used when given.
    """
    a = sitk.GetArrayFromImage(img).astype(np.float64)
    finite = np.isfinite(a)
    sp = spacing_zyx(img)
    if finite.any():
        lo = float(np.min(a[finite]))
        background = finite & (a == lo)
        if background.mean() >= STRIPPED_FRACTION:
            # already skull-stripped (BraTS-style): the brain is what is not background
            lab, n = ndi.label(finite & ~background)
            if n:
                sizes = np.bincount(lab.ravel())
                sizes[0] = 0
                return to_image(fill_holes(lab == int(np.argmax(sizes)), sp), img)
    f = sitk.GetImageFromArray(np.where(finite, a, np.nanmin(a) if finite.any() else 0.0).astype(np.float32))
    f.CopyInformation(img)
    classes = sitk.GetArrayFromImage(sitk.OtsuMultipleThresholds(f, 3, 0, 256))
    tissue = (classes >= 1) & (classes <= 2) & finite
    mask = np.zeros_like(tissue)
    for r in (erode_mm, erode_mm / 2.0, 0.0):  # fall back to smaller erosions on tiny heads
        er = ndi.binary_erosion(tissue, ball(sp, r)) if r > 0 else tissue
        lab, n = ndi.label(er)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        core = lab == int(np.argmax(sizes))
        mask = (ndi.binary_dilation(core, ball(sp, r)) & tissue) if r > 0 else core
        break
    mask = fill_holes(mask, sp)
    return to_image(mask, img)


def foreground(a: np.ndarray) -> np.ndarray:
    """Voxels that are not air or padding: above the lower of two nested Otsu splits.

    The first split separates the brightest tissue (fat, blood pool, enhancing tissue) from
    the rest; splitting what lies below it again separates air from tissue whatever the
    tissue mix.  Constant padding at the image minimum is excluded too.
    """
    from twinflow.segment.lesion import otsu

    finite = np.isfinite(a)
    v = a[finite]
    if v.size == 0:
        return finite
    sample = v[:: max(1, v.size // 400_000)]
    t1 = otsu(sample)
    low = sample[sample <= t1]
    t0 = otsu(low) if low.size > 1 and np.ptp(low) > 0 else float(sample.min())
    return finite & (a > t0)


# -------------------------------------------------------------------------------- N4


def n4(img: sitk.Image, mask: np.ndarray) -> sitk.Image:
    """N4 bias-field correction inside ``mask`` on a ~N4_GRID_MM grid; float32 on img's grid.

    Intensities are shifted to be positive first (N4 works on log intensities), so images
    normalised to zero mean work too.  If N4 fails the image is returned unchanged.
    """
    f = sitk.Cast(img, sitk.sitkFloat32)
    a = sitk.GetArrayViewFromImage(f)
    lo = float(np.min(a[mask])) if mask.any() else 0.0
    hi = float(np.max(a[mask])) if mask.any() else 1.0
    shift = (1.0 - lo) if lo <= 0 else 0.0
    if shift and hi - lo > 0:
        shift = (hi - lo) * 0.01 - lo  # 1 % of the range above zero: keeps the log well scaled
    if shift:
        f = f + shift
    m = to_image(mask, img)
    shrink = [max(1, int(round(N4_GRID_MM / s))) for s in img.GetSpacing()]
    fs = sitk.Shrink(f, shrink)
    ms = sitk.Shrink(m, shrink)
    filt = sitk.N4BiasFieldCorrectionImageFilter()
    filt.SetMaximumNumberOfIterations(list(N4_ITERATIONS))
    filt.SetNumberOfThreads(1)  # deterministic
    try:
        filt.Execute(fs, ms)
        log_bias = filt.GetLogBiasFieldAsImage(f)
    except RuntimeError:
        return sitk.Cast(img, sitk.sitkFloat32)
    out = f / sitk.Exp(log_bias)
    if shift:
        out = out - shift
    return sitk.Cast(out, sitk.sitkFloat32)
