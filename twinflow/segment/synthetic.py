"""Test images with a known answer for tumour segmentation.

* :func:`insert_lesion` puts a spherical enhancing lesion (solid or ring) into a real image,
  with the partial-volume averaging of the image's own voxels (a 5 mm lesion on 6.5 mm slices
  is seen at part of its contrast), so small-lesion behaviour can be measured on real anatomy.
* :func:`breast_phantom` builds a contrast-enhanced breast MRI (fat-suppressed T1 after
  contrast, and the matching pre-contrast T1) with an irregular rim-enhancing tumour.

Both return the ground-truth mask.  Everything is deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

__all__ = ["insert_lesion", "BreastCase", "breast_phantom", "sphere_phantom"]


def _points_lps(img: sitk.Image, box: tuple[slice, slice, slice], sub: tuple[int, int, int]) -> np.ndarray:
    """LPS points of ``sub`` x ``sub`` x ``sub`` sub-voxel samples of the voxels in ``box`` ([z, y, x] slices):
    shape (nz, ny, nx, s, 3) with s = prod(sub)."""
    d = np.asarray(img.GetDirection(), float).reshape(3, 3)
    m = d @ np.diag(img.GetSpacing())
    k, j, i = np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij")
    offs = np.stack(np.meshgrid(*((np.arange(n) + 0.5) / n - 0.5 for n in sub), indexing="ij"), -1).reshape(-1, 3)
    idx = np.stack([i, j, k], -1).astype(float)[..., None, :] + offs[None, None, None, :, :]
    return idx @ m.T + np.asarray(img.GetOrigin())


def _unit(a: np.ndarray) -> np.ndarray:
    """Zero mean, unit SD."""
    return (a - a.mean()) / (a.std() or 1.0)


def insert_lesion(
    image: sitk.Image,
    centre_lps_mm: tuple[float, float, float],
    diameter_mm: float,
    *,
    enhancement: float = 0.6,
    ring_mm: float | None = None,
    core_fraction: float = 0.8,
) -> tuple[sitk.Image, sitk.Image]:
    """Return (image with the lesion, truth mask).

    The lesion multiplies the local tissue intensity by ``1 + enhancement`` (a ring of
    thickness ``ring_mm`` when given, its centre by ``core_fraction``: a necrotic core).  Each
    voxel gets the occupancy-weighted mix (partial volume, sampled 0.25 mm apart at most);
    the truth mask is the voxels at least half inside the sphere.  Intensities may be
    negative (the enhancement is applied to ``value - min(image)`` then shifted back).
    """
    a = sitk.GetArrayFromImage(image).astype(np.float64)
    sp = np.asarray(image.GetSpacing(), float)
    r = 0.5 * diameter_mm
    centre_idx = np.asarray(image.TransformPhysicalPointToContinuousIndex([float(c) for c in centre_lps_mm]))[::-1]
    half = np.ceil((r + 1.0) / sp[::-1]).astype(int) + 1
    box = tuple(slice(max(0, int(np.floor(c)) - h), min(n, int(np.ceil(c)) + h + 1)) for c, h, n in zip(centre_idx, half, a.shape))
    sub = tuple(int(min(8, max(1, np.ceil(s / 0.25)))) for s in sp)  # x, y, z
    pts = _points_lps(image, box, (sub[2], sub[1], sub[0]))
    dist = np.linalg.norm(pts - np.asarray(centre_lps_mm, float), axis=-1)
    inside = dist <= r
    occupancy = inside.mean(axis=-1)
    if ring_mm is not None:
        rim = (inside & (dist >= r - ring_mm)).mean(axis=-1)
        core = occupancy - rim
    else:
        rim, core = occupancy, np.zeros_like(occupancy)
    lo = float(a.min())
    local = a[box] - lo
    factor = 1.0 + enhancement * rim + (core_fraction - 1.0) * core
    out = a.copy()
    out[box] = local * factor + lo
    truth = np.zeros(a.shape, np.uint8)
    truth[box] = occupancy >= 0.5
    img = sitk.GetImageFromArray(out.astype(np.float32))
    img.CopyInformation(image)
    t = sitk.GetImageFromArray(truth)
    t.CopyInformation(image)
    return img, t


@dataclass
class BreastCase:
    t1post: sitk.Image
    t1: sitk.Image
    organ_mask: sitk.Image
    truth: sitk.Image
    roi_lps_mm: tuple[float, ...]


def breast_phantom(seed: int = 0, *, spacing=(0.8, 0.8, 2.0), size=(360, 220, 60), tumour_diameter_mm: float = 18.0) -> BreastCase:
    """Axial bilateral breast DCE-MRI phantom (prone, fat-suppressed T1, ~1 minute after contrast).

    Geometry (LPS mm, origin at the centre of the field of view; y grows posterior): two
    half-ellipsoid breasts (radius ~70 mm, depth ~75 mm) in front of the chest wall (pectoral
    muscle, then ribs and lung, black), the heart behind them (blood pool strongly
    enhancing), an internal mammary vessel each side.  Tissue signal on the post-contrast
    fat-suppressed T1 (arbitrary units, Rician-like noise sd 12): fat 60, fibroglandular
    tissue 180 with mild background parenchymal enhancement (smooth +-15 %), muscle 140,
    blood 700, lung/air 5.  The tumour in the left breast is irregular (a sphere with
    lobulated, spiculated edge), 1.9 x the glandular signal at its rim, 1.4 x inside
    (heterogeneous), with a small non-enhancing centre.  Pre-contrast T1 (fat-suppressed):
    same anatomy without enhancement (glandular 150, tumour 150, blood 200).
    The ROI is the tumour's box + 10 mm; the organ mask covers both breasts.
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = size
    ref = sitk.Image(list(size), sitk.sitkFloat32)
    ref.SetSpacing(list(spacing))
    ref.SetOrigin([-(nx - 1) * spacing[0] / 2, -(ny - 1) * spacing[1] / 2, -(nz - 1) * spacing[2] / 2])
    z, y, x = np.meshgrid(*(np.arange(n, dtype=float) for n in (nz, ny, nx)), indexing="ij")
    X = ref.GetOrigin()[0] + x * spacing[0]
    Y = ref.GetOrigin()[1] + y * spacing[1]
    Z = ref.GetOrigin()[2] + z * spacing[2]
    chest_y = 20.0  # chest wall plane; breasts extend anterior (negative y)
    breasts = np.zeros(X.shape, bool)
    for cx in (-75.0, 75.0):
        breasts |= (((X - cx) / 70.0) ** 2 + ((Y - chest_y) / 75.0) ** 2 + (Z / 55.0) ** 2 <= 1.0) & (Y <= chest_y)
    muscle = (Y > chest_y) & (Y <= chest_y + 12.0) & (np.abs(X) < 150)
    thorax = (Y > chest_y + 12.0) & ((X / 160.0) ** 2 + ((Y - chest_y - 12.0) / 90.0) ** 2 <= 1.0)
    heart = ((X + 10.0) / 55.0) ** 2 + ((Y - chest_y - 55.0) / 40.0) ** 2 + (Z / 45.0) ** 2 <= 1.0
    body = breasts | muscle | thorax
    # fibroglandular tissue: smoothed noise thresholded, denser near the nipple-chest axis
    g = ndi.gaussian_filter(rng.standard_normal(X.shape), sigma=(2.0, 5.0, 5.0))
    dense = breasts & (g > np.percentile(g[breasts], 55))
    bpe = np.clip(1.0 + 0.15 * _unit(ndi.gaussian_filter(rng.standard_normal(X.shape), sigma=(4.0, 12.0, 12.0))), 0.85, 1.15)
    post = np.full(X.shape, 5.0)
    post[body] = 60.0
    post[dense] = 180.0 * bpe[dense]
    post[muscle] = 140.0
    post[thorax] = 5.0  # lung
    post[heart] = 700.0
    pre = np.where(post == 700.0, 200.0, np.where(dense, 150.0, post))
    for cx in (-30.0, 30.0):  # internal mammary vessels, just behind the chest wall... and anterior branches
        v = ((X - cx) ** 2 + (Y - chest_y - 4.0) ** 2 <= 2.0 ** 2)
        post[v] = 600.0
    # tumour: lobulated sphere in the left breast (patient left = +x in LPS)
    c = np.array([70.0, -25.0, 4.0])
    d = np.sqrt((X - c[0]) ** 2 + (Y - c[1]) ** 2 + (Z - c[2]) ** 2)
    theta = np.arctan2(Y - c[1], X - c[0])
    phi = np.arctan2(Z - c[2], np.hypot(X - c[0], Y - c[1]))
    radius = 0.5 * tumour_diameter_mm * (1.0 + 0.12 * np.sin(5 * theta) * np.cos(3 * phi) + 0.06 * np.sin(11 * theta))
    tumour = (d <= radius) & breasts
    rim = tumour & (d >= radius - 2.5)
    inner = tumour & ~rim
    necrotic = tumour & (d <= 0.2 * tumour_diameter_mm)
    het = 1.0 + 0.1 * _unit(ndi.gaussian_filter(rng.standard_normal(X.shape), 1.5))
    post[inner] = 180.0 * 1.4 * np.clip(het[inner], 0.85, 1.15)
    post[rim] = 180.0 * 1.9
    post[necrotic] = 120.0
    pre[tumour] = 150.0
    noise = 12.0

    def _img(a: np.ndarray) -> sitk.Image:
        n1, n2 = rng.normal(0, noise, a.shape), rng.normal(0, noise, a.shape)
        out = np.sqrt((a + n1) ** 2 + n2 ** 2)  # magnitude image: Rician noise
        im = sitk.GetImageFromArray(out.astype(np.float32))
        im.CopyInformation(ref)
        return im

    def _mask(m: np.ndarray) -> sitk.Image:
        im = sitk.GetImageFromArray(m.astype(np.uint8))
        im.CopyInformation(ref)
        return im

    truth = _mask(tumour)
    pts = np.stack([X[tumour], Y[tumour], Z[tumour]], -1)
    roi = tuple(np.concatenate([pts.min(0) - 10.0, pts.max(0) + 10.0]).tolist())
    return BreastCase(_img(post), _img(pre), _mask(breasts), truth, roi)


def sphere_phantom(
    size: int = 64,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    lesions: tuple[tuple[float, float, float, float, float], ...] = ((0.0, 0.0, 0.0, 4.0, 20.0),),
    seed: int = 0,
) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """(image, organ mask, truth): a sphere 'organ' (intensity 100, noise SD 2, air 5) with bright
    spherical lesions given as (LPS centre x, y, z, radius mm, contrast in noise SDs / 2)."""
    rng = np.random.default_rng(seed)
    img = sitk.Image([size] * 3, sitk.sitkFloat32)
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([-(size - 1) * s / 2.0 for s in spacing])
    k, j, i = np.meshgrid(*(np.arange(size),) * 3, indexing="ij")
    pts = np.stack([i * spacing[0], j * spacing[1], k * spacing[2]], -1) + np.asarray(img.GetOrigin())
    organ = np.linalg.norm(pts, axis=-1) <= 0.45 * size * min(spacing)
    arr = np.where(organ, 100.0, 5.0) + rng.normal(0.0, 2.0, organ.shape)
    truth = np.zeros(organ.shape, np.uint8)
    for x, y, z, rad, contrast in lesions:
        m = np.linalg.norm(pts - np.array([x, y, z]), axis=-1) <= rad
        arr[m] += contrast * 2.0
        truth[m] = 1

    def _img(a: np.ndarray, dtype) -> sitk.Image:
        out = sitk.GetImageFromArray(a.astype(dtype))
        out.CopyInformation(img)
        return out

    return _img(arr, np.float32), _img(organ, np.uint8), _img(truth, np.uint8)
