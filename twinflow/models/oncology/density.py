"""Tumour cell density from imaging: the observation model of the oncology twin.

The twin's state is the normalised cell density ``u = N / theta`` in ``[0, 1]``.  Imaging sees
``u`` only where the tumour is visible (FLAIR/T2 hyperintense, ``u >= T2_THRESHOLD``):

* **From ADC** (preferred).  Diffusion-weighted MRI: water diffusion falls as cells pack more
  densely.  The usual linear mapping (Anderson et al., MRI 2000; Atuegwu et al., Phys Med Biol
  2012; Hormuth et al.) between the ADC of free water and the minimum ADC of maximal
  cellularity gives, inside the tumour mask,

      u = (ADC_w - ADC) / (ADC_w - ADC_min)

  with ``ADC_w = 3000e-6 mm^2/s`` (free water at 37 C) and ``ADC_min = 600e-6 mm^2/s``
  (densest tumour).  ``adc_min="roi"`` takes the minimum ADC inside the tumour masks of the
  patient instead, as Yankeelov's group does when no reference is known.  Values are not
  clipped, so noise stays zero-mean (a noisy voxel may map slightly outside ``[0, 1]``).
* **From segmentation labels** (fallback when there is no ADC).  Labels ``1`` enhancing,
  ``2`` non-enhancing / oedema, ``3`` necrosis.  Assumptions (documented in
  docs/oncology-model.md): enhancing tumour lies in ``[0.80, 1]`` (T1-Gd threshold), non-
  enhancing/oedema in ``[0.16, 0.80)`` (between the FLAIR/T2 and T1-Gd thresholds, Swanson
  et al.), necrosis holds no viable tumour cells (``u = 0``).  As a point value
  (:func:`density_from_labels`) each label takes its interval midpoint (0.90, 0.48, 0);
  as an observation (:func:`observation_from_labels`) only the interval is used.

Outside the visible tumour nothing is measured except that ``u < T2_THRESHOLD``.  An
:class:`Observation` therefore stores, per voxel, a point value (``value``; NaN where none)
and an interval ``[lower, upper]`` that the density is known to lie in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

T2_THRESHOLD = 0.16     # FLAIR/T2 visibility of infiltrating tumour
T1_THRESHOLD = 0.80     # T1-Gd enhancement
ADC_FREE_WATER = 3000.0  # 1e-6 mm^2/s
ADC_MIN = 600.0          # 1e-6 mm^2/s

LABEL_ENHANCING = 1
LABEL_OEDEMA = 2
LABEL_NECROSIS = 3
#: (lower, upper, point value) of u per label
LABEL_DENSITY = {
    LABEL_ENHANCING: (T1_THRESHOLD, 1.0, 0.5 * (T1_THRESHOLD + 1.0)),
    LABEL_OEDEMA: (T2_THRESHOLD, T1_THRESHOLD, 0.5 * (T2_THRESHOLD + T1_THRESHOLD)),
    LABEL_NECROSIS: (0.0, 0.0, 0.0),
}


@dataclass
class Observation:
    """What one visit tells about ``u``: a point value where measured, an interval everywhere.

    ``value`` is NaN where there is no point measurement; ``lower <= u <= upper`` holds
    for the true density everywhere (``upper = T2_THRESHOLD`` outside the visible tumour).
    ``tumour`` is the visible tumour mask.  Arrays are float32 on the image grid.
    """
    day: float
    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    tumour: np.ndarray
    source: str = "adc"

    def crop(self, box: tuple[slice, ...]) -> "Observation":
        return Observation(self.day, self.value[box], self.lower[box], self.upper[box], self.tumour[box], self.source)

    def point_density(self) -> np.ndarray:
        """Best point estimate of ``u``: the value where measured, else the interval midpoint
        inside the tumour, 0 outside it."""
        mid = np.where(self.tumour, 0.5 * (self.lower + self.upper), 0.0)
        return np.where(np.isfinite(self.value), self.value, mid).astype(np.float32)


def tumour_mask_from_labels(labels: np.ndarray, include_necrosis: bool = True) -> np.ndarray:
    lab = np.asarray(labels)
    m = (lab == LABEL_ENHANCING) | (lab == LABEL_OEDEMA)
    if include_necrosis:
        m |= lab == LABEL_NECROSIS
    return m


def adc_min_from_roi(adcs: list[np.ndarray], masks: list[np.ndarray]) -> float:
    vals = [np.asarray(a, float)[np.asarray(m, bool)] for a, m in zip(adcs, masks)]
    vals = [v for v in vals if v.size]
    if not vals:
        raise ValueError("no tumour voxels to take the minimum ADC from")
    return float(min(v.min() for v in vals))


def density_from_adc(adc: np.ndarray, tumour: np.ndarray, adc_w: float = ADC_FREE_WATER,
                     adc_min: float = ADC_MIN) -> np.ndarray:
    """``u = (ADC_w - ADC) / (ADC_w - ADC_min)`` inside ``tumour``, 0 outside (not clipped)."""
    if not adc_w > adc_min:
        raise ValueError(f"ADC_w ({adc_w}) must exceed ADC_min ({adc_min})")
    tumour = np.asarray(tumour, bool)
    u = (adc_w - np.asarray(adc, np.float64)) / (adc_w - adc_min)
    return np.where(tumour, u, 0.0).astype(np.float32)


def density_from_labels(labels: np.ndarray) -> np.ndarray:
    """Point density from labels: interval midpoints (enhancing 0.90, oedema 0.48, necrosis 0)."""
    lab = np.asarray(labels)
    u = np.zeros(lab.shape, np.float32)
    for code, (_lo, _hi, mid) in LABEL_DENSITY.items():
        u[lab == code] = mid
    return u


def observation_from_adc(day: float, adc: np.ndarray, tumour: np.ndarray, adc_w: float = ADC_FREE_WATER,
                         adc_min: float = ADC_MIN, labels: np.ndarray | None = None) -> Observation:
    """Point values from ADC inside the tumour; ``u < T2_THRESHOLD`` outside.  Necrotic voxels
    (label 3, when labels are given) are observed as ``u = 0`` (no viable cells)."""
    tumour = np.asarray(tumour, bool)
    u = density_from_adc(adc, tumour, adc_w, adc_min)
    value = np.where(tumour, u, np.nan).astype(np.float32)
    lower = np.where(tumour, T2_THRESHOLD, 0.0).astype(np.float32)
    upper = np.where(tumour, 1.0, T2_THRESHOLD).astype(np.float32)
    if labels is not None:
        nec = np.asarray(labels) == LABEL_NECROSIS
        value[nec] = 0.0
        lower[nec] = 0.0
        upper[nec] = 0.0
    return Observation(float(day), value, lower, upper, tumour, "adc")


def observation_from_labels(day: float, labels: np.ndarray) -> Observation:
    """Interval observations from the label map (no point values): see the module docstring."""
    lab = np.asarray(labels)
    lower = np.zeros(lab.shape, np.float32)
    upper = np.full(lab.shape, T2_THRESHOLD, np.float32)
    for code, (lo, hi, _mid) in LABEL_DENSITY.items():
        sel = lab == code
        lower[sel] = lo
        upper[sel] = hi
    value = np.full(lab.shape, np.nan, np.float32)
    return Observation(float(day), value, lower, upper, tumour_mask_from_labels(lab), "labels")


def cap_boundary_shell(u: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Partial-volume guard for the one-voxel shell of ``mask`` (mask voxels with a 6-neighbour
    outside it): a shell voxel is given at most the largest value of its 6-neighbours inside the
    mask.  An infiltrative front does not rise towards its edge, so the true shell is unchanged
    (on the noise-free demo no voxel changes; with ADC noise about 1 in 1000), while a voxel that
    an over-segmentation adds just outside the front, whose ADC is a tissue / CSF partial-volume
    value (mapped to u ~ 0.4-0.9), is brought down to the density of the front behind it."""
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    u = np.asarray(u)
    if not mask.any():
        return u
    st = ndimage.generate_binary_structure(3, 1)
    fp = st.copy()
    fp[1, 1, 1] = False
    nb = ndimage.maximum_filter(np.where(mask, u, -np.inf), footprint=fp, mode="constant", cval=-np.inf)
    shell = mask & ~ndimage.binary_erosion(mask, st, border_value=0)
    return np.where(shell, np.minimum(u, np.maximum(nb, 0.0)), u).astype(u.dtype)


def initial_density(obs: Observation, shell_guard: bool = True) -> np.ndarray:
    """The twin's initial condition from the first calibration visit: the measured density
    inside the visible tumour, 0 elsewhere (cells below visibility are not part of the twin;
    the demo cohort is generated the same way).  Negative noisy values are set to 0.  With
    ``shell_guard`` (default) the mask's one-voxel shell is capped by :func:`cap_boundary_shell`
    (a segmentation error at the boundary would otherwise seed a dense cell population there)."""
    u = np.maximum(obs.point_density(), 0.0).astype(np.float32)
    if shell_guard and u.ndim == 3:
        u = cap_boundary_shell(u, obs.tumour)
    return u
