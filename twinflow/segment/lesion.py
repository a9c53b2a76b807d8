"""Organ-independent building blocks of lesion segmentation (arrays are ``[z, y, x]``).

Robust intensity standardisation, deterministic two-class splits (Otsu, a two-component
Gaussian mixture), morphology with millimetre radii on anisotropic grids, hole filling per
acquired slice, and connected-component selection.  Nothing here knows about brains: the
glioma method (:mod:`twinflow.segment.glioma`) and the single-contrast ROI method
(:mod:`twinflow.segment.enhancing`) are built from these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "robust_z",
    "otsu",
    "Mixture2",
    "gmm2",
    "ball",
    "slice_axis",
    "fill_holes",
    "remove_small",
    "label_components",
    "keep_touching",
    "bbox",
    "grow_box",
]


def robust_z(a: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(a - median) / (1.4826 MAD)`` over ``mask`` (the SD when the MAD is 0; 1 when both are).

    Offset and scale free, so intensity-normalised inputs with negative values (BraTS
    ``subtrMeanDivStd``), raw scanner units and bias-corrected images behave alike; a lesion
    of up to a few tens of percent of the mask hardly moves the median and MAD.
    """
    v = a[mask]
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.zeros_like(a, dtype=np.float64), 0.0, 1.0
    med = float(np.median(v))
    scale = 1.4826 * float(np.median(np.abs(v - med)))
    if not scale > 0:
        scale = float(np.std(v)) or 1.0
    return (a - med) / scale, med, scale


def otsu(values: np.ndarray, bins: int = 128) -> float:
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


@dataclass(frozen=True)
class Mixture2:
    """Two Gaussians (low, high): weights, means, SDs, and the decision threshold between them."""

    weight: tuple[float, float]
    mean: tuple[float, float]
    sd: tuple[float, float]
    threshold: float

    @property
    def separation(self) -> float:
        """Distance of the high mean from the low one, in low-class SDs."""
        return (self.mean[1] - self.mean[0]) / max(self.sd[0], 1e-9)

    def as_dict(self) -> dict[str, float]:
        return {"low_mean": self.mean[0], "low_sd": self.sd[0], "high_mean": self.mean[1], "high_sd": self.sd[1],
                "high_weight": self.weight[1], "threshold": self.threshold}


def gmm2(values: np.ndarray, *, iterations: int = 200, bins: int = 256) -> Mixture2 | None:
    """Two-component 1-D Gaussian mixture by EM on a fine histogram (deterministic, fast).

    Initialised at Otsu's split; returns None for fewer than 20 finite values or no spread.
    ``threshold`` is where the weighted densities cross between the two means (the Bayes
    boundary), which adapts to unequal class sizes and spreads unlike Otsu's split.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 20 or not np.ptp(v) > 0:
        return None
    hist, edges = np.histogram(v, bins=bins)
    x = 0.5 * (edges[:-1] + edges[1:])
    h = hist.astype(np.float64)
    t = otsu(v)
    lo, hi = x <= t, x > t
    if not lo.any() or not hi.any() or h[lo].sum() == 0 or h[hi].sum() == 0:
        return None
    w = np.array([h[lo].sum(), h[hi].sum()]) / h.sum()
    mu = np.array([np.average(x[lo], weights=h[lo]), np.average(x[hi], weights=h[hi])])
    floor = max(edges[1] - edges[0], 1e-6)
    sd = np.array([np.sqrt(np.average((x[lo] - mu[0]) ** 2, weights=h[lo])),
                   np.sqrt(np.average((x[hi] - mu[1]) ** 2, weights=h[hi]))])
    sd = np.maximum(sd, floor)
    for _ in range(iterations):
        p = w[:, None] / sd[:, None] * np.exp(-0.5 * ((x[None, :] - mu[:, None]) / sd[:, None]) ** 2)
        r = p / np.maximum(p.sum(axis=0), 1e-300) * h[None, :]
        nk = r.sum(axis=1)
        if np.any(nk <= 0):
            return None
        new_mu = (r * x).sum(axis=1) / nk
        new_sd = np.maximum(np.sqrt((r * (x[None, :] - new_mu[:, None]) ** 2).sum(axis=1) / nk), floor)
        new_w = nk / nk.sum()
        done = np.allclose(new_mu, mu, atol=1e-6) and np.allclose(new_sd, sd, atol=1e-6)
        mu, sd, w = new_mu, new_sd, new_w
        if done:
            break
    order = np.argsort(mu)
    mu, sd, w = mu[order], sd[order], w[order]
    grid = np.linspace(mu[0], mu[1], 512)
    d0 = w[0] / sd[0] * np.exp(-0.5 * ((grid - mu[0]) / sd[0]) ** 2)
    d1 = w[1] / sd[1] * np.exp(-0.5 * ((grid - mu[1]) / sd[1]) ** 2)
    above = np.nonzero(d1 >= d0)[0]
    thr = float(grid[above[0]]) if above.size else float(mu[1])
    return Mixture2((float(w[0]), float(w[1])), (float(mu[0]), float(mu[1])), (float(sd[0]), float(sd[1])), thr)


def ball(spacing_zyx: np.ndarray, r_mm: float) -> np.ndarray:
    """Ellipsoidal structuring element of physical radius ``r_mm`` (at least the centre voxel)."""
    sp = np.asarray(spacing_zyx, dtype=float)
    r = np.floor(r_mm / sp + 1e-6).astype(int) if r_mm > 0 else np.zeros(3, int)
    grids = np.ogrid[tuple(slice(-k, k + 1) for k in r)]
    if r_mm <= 0:
        return np.ones((1, 1, 1), dtype=bool)
    d = sum((g * s / r_mm) ** 2 for g, s in zip(grids, sp))
    return np.asarray(d <= 1.0 + 1e-9)


def slice_axis(spacing_zyx: np.ndarray) -> int | None:
    """Array axis of the acquired slices (the coarsest spacing), or None when isotropic."""
    sp = np.asarray(spacing_zyx, dtype=float)
    k = int(np.argmax(sp))
    return k if sp[k] > 1.2 * np.min(sp) else None


def fill_holes(mask: np.ndarray, spacing_zyx: np.ndarray) -> np.ndarray:
    """3D hole filling, then 2D per slice: along the acquired axis for thick slices, along all
    three axes for (near-)isotropic data (a necrotic core is often open in 3D through a gap in
    its rim, but closed in most planar cuts)."""
    out = ndi.binary_fill_holes(mask)
    ax = slice_axis(spacing_zyx)
    for axis in ((ax,) if ax is not None else (0, 1, 2)):
        moved = np.moveaxis(out, axis, 0).copy()
        for i in range(moved.shape[0]):
            if moved[i].any():
                moved[i] = ndi.binary_fill_holes(moved[i])
        out = np.moveaxis(moved, 0, axis)
    return out


def remove_small(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    """Drop connected components with fewer than ``min_voxels`` voxels."""
    lab, n = ndi.label(mask)
    if n == 0:
        return mask.copy()
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[lab]


def label_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-connected labels and the voxel count per label (index 0 = background, count 0)."""
    lab, n = ndi.label(mask)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    sizes[0] = 0
    return lab, sizes


def keep_touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Components of ``mask`` that contain a seed voxel."""
    lab, n = ndi.label(mask)
    if n == 0:
        return mask.copy()
    ids = np.unique(lab[seeds & mask])
    keep = np.zeros(n + 1, dtype=bool)
    keep[ids] = True
    keep[0] = False
    return keep[lab]


def bbox(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Tight bounding box of ``mask`` as slices (None when empty)."""
    if not mask.any():
        return None
    out = []
    for axis in range(mask.ndim):
        other = tuple(i for i in range(mask.ndim) if i != axis)
        idx = np.nonzero(mask.any(axis=other))[0]
        out.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(out)


def grow_box(box: tuple[slice, ...], shape: tuple[int, ...], spacing_zyx: np.ndarray, margin_mm: float) -> tuple[slice, ...]:
    """``box`` grown by ``margin_mm`` on every side (at least one voxel), clipped to ``shape``."""
    out = []
    for s, n, sp in zip(box, shape, spacing_zyx):
        m = max(1, int(np.ceil(margin_mm / sp)))
        out.append(slice(max(0, s.start - m), min(n, s.stop + m)))
    return tuple(out)
