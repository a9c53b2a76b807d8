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

**With expert regions of interest on the ADC** (the layout of the Hormuth/Yankeelov HGG studies and
TumorTwin: an enhancing and a non-enhancing ROI per visit, labels ``1`` and ``2``), see
:func:`observation_from_adc_rois`: the enhancing ROI is mapped from ADC, with ``ADC_min`` the
patient's minimum ADC in tumour (:func:`adc_min_from_rois`); the non-enhancing ROI is FLAIR-bright
tissue whose ADC is raised by vasogenic oedema, so its ADC is not mapped: it is an interval
observation ``[0.16, 0.80)`` (visible, not enhancing), and where a point value is needed (the initial
condition, the observed cell map of the forecast metrics) it takes the literature's constant
``NONENHANCING_CELL_FRACTION = 0.16`` (Hormuth et al.; TumorTwin's ``CELLULARITY_NON_ENHANCE``).
ADC maps are accepted in um^2/s (= 1e-6 mm^2/s), 1e-3 mm^2/s or mm^2/s; :func:`adc_to_um2_s` finds
which from the values.

Outside the visible tumour nothing is measured except that ``u < T2_THRESHOLD``.  An
:class:`Observation` therefore stores, per voxel, a point value (``value``; NaN where none)
and an interval ``[lower, upper]`` that the density is known to lie in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

T2_THRESHOLD = 0.16     # FLAIR/T2 visibility of infiltrating tumour
T1_THRESHOLD = 0.80     # T1-Gd enhancement
ADC_FREE_WATER = 3000.0  # 1e-6 mm^2/s = um^2/s: free water at 37 C
ADC_MIN = 600.0          # 1e-6 mm^2/s: densest tumour (the demo cohort's value; patients: adc_min_from_rois)
#: cell fraction given to the non-enhancing ROI where a point value is needed (Hormuth et al. 2021;
#: TumorTwin ``CELLULARITY_NON_ENHANCE``): the FLAIR visibility threshold
NONENHANCING_CELL_FRACTION = 0.16
#: the 99.5th percentile of an ADC map in um^2/s lies in this range (free water ~3000, tissue ~700-2000)
ADC_PLAUSIBLE_UM2_S = (300.0, 30000.0)
#: accepted ADC units: factor to um^2/s
ADC_UNITS = (("um2/s (1e-6 mm2/s)", 1.0), ("1e-3 mm2/s", 1e3), ("mm2/s", 1e6))

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
    nominal: np.ndarray | None = None   # point value where none is measured (NaN: the interval midpoint)

    def crop(self, box: tuple[slice, ...]) -> "Observation":
        return Observation(self.day, self.value[box], self.lower[box], self.upper[box], self.tumour[box], self.source,
                           None if self.nominal is None else self.nominal[box])

    def point_density(self) -> np.ndarray:
        """Best point estimate of ``u``: the value where measured, else the nominal value where
        one is documented (the non-enhancing ROI), else the interval midpoint inside the tumour,
        0 outside it."""
        mid = np.where(self.tumour, 0.5 * (self.lower + self.upper), 0.0)
        if self.nominal is not None:
            mid = np.where(np.isfinite(self.nominal), self.nominal, mid)
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


def adc_to_um2_s(adc: np.ndarray, where: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """The ADC map in um^2/s (= 1e-6 mm^2/s) and the unit it was found in.

    The unit is told from the 99.5th percentile of the positive values (inside ``where`` when
    given): in um^2/s it lies in :data:`ADC_PLAUSIBLE_UM2_S` for any tissue with some fluid or
    tumour in it, and the accepted units are a factor 1000 apart.  Raises
    :class:`~twinflow.errors.InputError` (without patient or file: the caller adds them) for an
    empty, constant or implausible map."""
    from twinflow.errors import InputError

    a = np.asarray(adc, np.float64)
    sel = np.isfinite(a) & (a > 0)
    if where is not None:
        sel &= np.asarray(where, bool)
    if not sel.any():
        raise InputError("ADC map has no positive values (an empty image)")
    vals = a[sel]
    if float(vals.max()) == float(vals.min()):
        raise InputError(f"ADC map is constant ({float(vals.max()):g}): no diffusion contrast to map cells from")
    p = float(np.percentile(vals, 99.5))
    lo, hi = ADC_PLAUSIBLE_UM2_S
    for name, f in ADC_UNITS:
        if lo <= p * f < hi:
            return (np.where(np.isfinite(a), a * f, np.nan)).astype(np.float32), name
    raise InputError(f"ADC values (99.5th percentile {p:.4g}) are in none of the known units "
                     f"({', '.join(n for n, _ in ADC_UNITS)}): free water should read about 3000 um2/s")


def adc_min_from_rois(adcs: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """The patient's minimum ADC in tumour (the ``ADC_min`` of the linear cellularity mapping,
    as Hormuth/Yankeelov take it), robust to single noisy voxels: the minimum over the masks'
    interior voxels (6-neighbourhood erosion; the whole mask where erosion leaves nothing) of the
    ADC median-filtered over 3 x 3 x 3 voxels.  ``adcs`` in um^2/s, one per visit."""
    from scipy import ndimage

    best = np.inf
    st = ndimage.generate_binary_structure(3, 1)
    for a, m in zip(adcs, masks):
        m = np.asarray(m, bool)
        if not m.any():
            continue
        inner = ndimage.binary_erosion(m, st, border_value=0)
        sel = inner if inner.any() else m
        med = ndimage.median_filter(np.nan_to_num(np.asarray(a, np.float32), nan=ADC_FREE_WATER), size=3,
                                    mode="nearest")
        best = min(best, float(med[sel].min()))
    if not np.isfinite(best):
        raise ValueError("no tumour voxels to take the minimum ADC from")
    return max(best, 0.0)


def observation_from_adc_rois(day: float, adc_um2_s: np.ndarray, labels: np.ndarray, *,
                              adc_w: float = ADC_FREE_WATER, adc_min: float = ADC_MIN,
                              nonenhancing: str = "interval") -> Observation:
    """One visit with expert (or automatic) regions on the ADC grid, labels 1 enhancing, 2
    non-enhancing / oedema, 3 necrosis (see the module docstring).

    * enhancing: ``u = (ADC_w - ADC) / (ADC_w - ADC_min)`` (not clipped), bounds ``[0, 1]``;
    * non-enhancing: ``nonenhancing="interval"``: the interval ``[0.16, 0.80]`` and the nominal
      value 0.16; ``"adc"``: mapped from ADC like the enhancing region;
    * necrosis: ``u = 0``; outside the labels: ``u < 0.16``.
    A voxel with a non-finite ADC (outside the acquired field) keeps only its interval."""
    if nonenhancing not in ("interval", "adc"):
        raise ValueError(f"nonenhancing must be 'interval' or 'adc', got {nonenhancing!r}")
    lab = np.asarray(labels)
    tumour = tumour_mask_from_labels(lab)
    u = density_from_adc(np.nan_to_num(adc_um2_s, nan=adc_w), tumour, adc_w, adc_min)
    mapped = lab == LABEL_ENHANCING
    if nonenhancing == "adc":
        mapped = mapped | (lab == LABEL_OEDEMA)
    mapped &= np.isfinite(adc_um2_s)
    value = np.where(mapped, u, np.nan).astype(np.float32)
    lower = np.where(tumour, T2_THRESHOLD, 0.0).astype(np.float32)
    upper = np.where(tumour, 1.0, T2_THRESHOLD).astype(np.float32)
    lower[mapped] = 0.0
    non = (lab == LABEL_OEDEMA) & ~mapped
    upper[non] = T1_THRESHOLD
    nominal = np.full(lab.shape, np.nan, np.float32)
    nominal[non] = NONENHANCING_CELL_FRACTION
    nec = lab == LABEL_NECROSIS
    value[nec] = 0.0
    lower[nec] = 0.0
    upper[nec] = 0.0
    return Observation(float(day), value, lower, upper, tumour, "adc", nominal)


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
    # an isolated voxel (no 6-neighbour in the mask: a one-voxel lesion) has no front behind it: kept
    shell = mask & ~ndimage.binary_erosion(mask, st, border_value=0) & np.isfinite(nb)
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
