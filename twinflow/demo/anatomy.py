"""Real brain anatomy for the demo cohort, from the MNI ICBM152 2009a template shipped in nilearn.

nilearn ships (inside its wheel, no download) the skull-stripped ICBM152 2009a nonlinear
symmetric T1 template and its grey- and white-matter probability maps at 1 mm, RAS+.  The
demo resamples them onto a coarser grid cropped to the brain (default 2 x 2 x 3 mm, as a
clinical 2D acquisition would be) with trilinear interpolation after a Gaussian anti-alias
filter.  CSF probability is what remains of the brain mask after grey and white matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import nibabel as nib
import numpy as np
from scipy import ndimage

TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


@dataclass
class Anatomy:
    affine: np.ndarray      # voxel -> RAS mm
    spacing: tuple[float, float, float]
    t1: np.ndarray          # template T1 intensity (0..255 scale), float32
    p_gm: np.ndarray
    p_wm: np.ndarray
    p_csf: np.ndarray
    brain: np.ndarray       # bool

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.t1.shape

    def world_to_voxel(self, xyz_mm) -> np.ndarray:
        return np.linalg.solve(self.affine, np.r_[np.asarray(xyz_mm, float), 1.0])[:3]

    @property
    def tissue(self) -> np.ndarray:
        """Voxels where tumour cells can live (grey or white matter dominant)."""
        return (self.p_gm + self.p_wm) >= 0.5


def template_source() -> str:
    import nilearn
    return f"nilearn {nilearn.__version__}: MNI ICBM152 2009a nonlinear symmetric (T1, GM, WM)"


def _load(name: str) -> nib.Nifti1Image:
    ref = resources.files("nilearn.datasets.data").joinpath(TEMPLATE_FILES[name])
    with resources.as_file(ref) as p:
        img = nib.load(str(p))
        img = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    return img


def load_anatomy(spacing=(2.0, 2.0, 3.0), margin_mm: float = 6.0) -> Anatomy:
    t1 = _load("t1")
    gm = _load("gm")
    wm = _load("wm")
    src_aff = t1.affine
    t1a = np.asarray(t1.dataobj)
    gma = np.asarray(gm.dataobj) / 255.0
    wma = np.asarray(wm.dataobj) / 255.0
    brain1 = ndimage.binary_fill_holes(ndimage.binary_closing(t1a > 0, iterations=2))

    # bounding box of the brain in world mm, with a margin
    idx = np.argwhere(brain1)
    lo = src_aff @ np.r_[idx.min(0), 1]
    hi = src_aff @ np.r_[idx.max(0), 1]
    lo, hi = np.minimum(lo, hi)[:3] - margin_mm, np.maximum(lo, hi)[:3] + margin_mm
    sp = np.asarray(spacing, float)
    shape = tuple(int(np.ceil((hi[i] - lo[i]) / sp[i])) + 1 for i in range(3))
    aff = np.diag(np.r_[sp, 1.0])
    aff[:3, 3] = lo
    # target voxel -> source voxel coordinates
    m = np.linalg.solve(src_aff, aff)
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1)
    src = (m[:3, :3] @ grid + m[:3, 3:4]).astype(np.float32)

    def resample(a: np.ndarray, order: int = 1, smooth: bool = True) -> np.ndarray:
        if smooth:
            sig = np.maximum(sp / 2.355 * 0.8, 0.0)  # ~0.8 of the target voxel FWHM
            a = ndimage.gaussian_filter(a.astype(np.float32), sigma=sig)
        return ndimage.map_coordinates(a, src, order=order, mode="constant", cval=0.0).reshape(shape).astype(np.float32)

    t1r = resample(t1a)
    gmr = np.clip(resample(gma), 0, 1)
    wmr = np.clip(resample(wma), 0, 1)
    brain = resample(brain1.astype(np.float32)) >= 0.5
    gmr[~brain] = 0
    wmr[~brain] = 0
    csf = np.where(brain, np.clip(1.0 - gmr - wmr, 0, 1), 0).astype(np.float32)
    t1r[~brain] = 0
    return Anatomy(affine=aff, spacing=tuple(float(s) for s in sp), t1=t1r, p_gm=gmr, p_wm=wmr,
                   p_csf=csf, brain=brain)
