"""What the oncology twin reads for one patient: observations per visit, the organ domain with
its tissue maps, and the documented priors of an uncalibrated twin.  Everything here works on
file paths and arrays (the :class:`~twinflow.models.base.PatientContext` stays in ``twin.py``);
every bad input raises :class:`~twinflow.errors.InputError` naming the patient and the file.

**Observations.**  A visit with a tumour label map (an expert ``label_path`` on any series, or an
automatic segmentation) is an observation.  With an ADC map the cell fraction is mapped from it
(:mod:`.density`): inside enhancing tumour ``u = (ADC_w - ADC) / (ADC_w - ADC_min)`` with
``ADC_w = 3000 um^2/s`` and ``ADC_min`` the patient's minimum ADC in tumour over the calibration
visits; the non-enhancing region as configured (``nonenhancing``: ``interval``, the default, or
``adc``).  Without ADC the labels give intervals.  The model clock starts at the first visit
that shows tumour; empty visits before it are dropped; no tumour at any visit stops the twin.

**Domain.**  The organ mask is the ``organ_mask`` series (``brain_mask`` is a synonym), from the
first visit that has one.  Tissue maps give tissue-dependent diffusion
``D = D_1 (p_1 + ratio p_2)``:

=========  ===========================================  =====================  ==================
organ      tissue maps (series)                          ratio D_2 / D_1        domain
=========  ===========================================  =====================  ==================
brain      ``wm_prob`` (1), ``gm_prob`` (2)              0.1 (Swanson)          ``p_1 + p_2 >= 0.5``
breast     ``fibroglandular_prob`` (1), ``adipose_prob``  0.5 (assumption,       ``p_1 + p_2 >= 0.5``
           (2)                                           see below)             in the organ mask
any        none: ``organ_mask`` (or ``brain_mask``)      --                     the organ mask,
           only                                                                 homogeneous ``D``
=========  ===========================================  =====================  ==================

Without tissue maps and without an organ mask a brain is assumed and its mask estimated from the
first visit's image; when the tumour does not lie inside the domain the twin stops with an error
asking for an ``organ_mask``.  In the breast and in a bare organ mask, tumour voxels that the
tissue maps leave unclassified count as tissue 1 (the mass itself is neither fat nor a gap); in the
brain they are dropped as before (CSF partial volume).  The breast ratio is an assumption: tumour
invasion follows fibroglandular (ductal and stromal) tissue and fat is a poorer medium, but no
per-tissue breast diffusivity is published that we could take; it is listed in the twin's
assumptions.

**Priors** (an uncalibrated twin, one imaging visit): brain (glioma) ``D 0.1 mm^2/day, k 0.03
/day, alpha 0.03 /Gy, kappa 0.001 L/(mg h)`` -- mid-range glioma values (D 0.01-0.5, k 0.005-0.1,
alpha 0.02-0.06), also the calibration's start values; breast (triple-negative) ``D 0.05
mm^2/day, k 0.025 /day`` -- TumorTwin's TNBC demo values -- with the glioma ``alpha`` and
``kappa``; a bare organ mask takes the glioma values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from twinflow.errors import InputError
from twinflow.models.oncology.calibrate import DEFAULT_START
from twinflow.models.oncology.density import (
    ADC_FREE_WATER, LABEL_ENHANCING, Observation, adc_min_from_rois, adc_to_um2_s, observation_from_adc_rois,
    observation_from_labels)
from twinflow.models.oncology.growth import GrowthParams

ORGAN_MASK_SERIES = ("organ_mask", "brain_mask")
#: organ -> (primary, secondary) tissue probability series
TISSUE_SERIES = {"brain": ("wm_prob", "gm_prob"), "breast": ("fibroglandular_prob", "adipose_prob")}
#: D_secondary / D_primary
SECONDARY_RATIO = {"brain": 0.1, "breast": 0.5}
PRIORS = {
    "brain": DEFAULT_START,
    "breast": GrowthParams(d_w_mm2_day=0.05, k_per_day=0.025, alpha_per_gy=DEFAULT_START.alpha_per_gy,
                           kappa_l_per_mg_h=DEFAULT_START.kappa_l_per_mg_h, gm_ratio=SECONDARY_RATIO["breast"]),
    "organ": DEFAULT_START,
}
PRIOR_SOURCES = {
    "brain": "glioma prior (mid-range literature values; docs/oncology-model.md)",
    "breast": "triple-negative breast cancer prior (TumorTwin TNBC demo: D 0.05 mm2/day, k 0.025 /day; "
              "alpha and kappa as for glioma)",
    "organ": "glioma prior (no organ-specific prior for an unnamed organ)",
}
#: smallest extent along every axis of a 3D image (a single slice or a 2-slice stack is a 2D image)
MIN_AXIS_VOXELS = 3
#: the tumour at the first visit must lie this much inside the domain
MIN_TUMOUR_IN_DOMAIN = 0.5
#: ADC_w - ADC_min below this (um^2/s) leaves no dynamic range for the cell fraction
MIN_ADC_RANGE = 300.0


@dataclass
class VisitFiles:
    """One visit's inputs: the label map the twin uses, an optional ADC map, and how to name
    them in messages (the sheet's paths, never absolute ones)."""
    visit: str
    date: str
    segmentation: Path
    shown: str                      # the series whose labels these are (display path)
    adc: Path | None = None
    adc_shown: str | None = None


@dataclass
class Observations:
    visits: list[str]
    dates: list[str]
    days: list[float]
    obs: list[Observation]
    sources: list[str]
    affine: np.ndarray
    spacing: tuple[float, float, float]
    adc: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Domain:
    organ: str                      # brain | breast | organ
    tissue: np.ndarray              # uint8
    p_wm: np.ndarray                # tissue 1 (white matter, fibroglandular, or the organ)
    p_gm: np.ndarray                # tissue 2 (grey matter, adipose, or none)
    ratio: float                    # D_2 / D_1
    notes: list[str]


def _load(path: Path, patient: str, shown: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        arr = np.asarray(img.dataobj)
    except Exception as exc:   # a corrupt or unreadable ingest output
        raise InputError(f"cannot read the image ({type(exc).__name__})", patient=patient, path=shown) from None
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return arr, img.affine, zooms + (1.0,) * (3 - len(zooms))


def check_3d(arr: np.ndarray, patient: str, shown: str) -> np.ndarray:
    """A 3D array with at least :data:`MIN_AXIS_VOXELS` voxels on every axis, else InputError."""
    a = np.asarray(arr)
    if a.ndim == 4 and a.shape[3] == 1:
        a = a[..., 0]
    if a.ndim != 3 or min(a.shape) < MIN_AXIS_VOXELS:
        raise InputError(f"is a 2D image (shape {'x'.join(str(n) for n in a.shape)}): the oncology twin needs "
                         f"3D images with at least {MIN_AXIS_VOXELS} voxels along every axis", patient=patient, path=shown)
    return a


#: a series resampled onto the tumour grid must cover at least this fraction of it
MIN_GRID_COVERAGE = 0.5


def on_grid(arr: np.ndarray, affine: np.ndarray, ref_affine: np.ndarray, ref_shape, *, order: int, patient: str,
            shown: str, what: str) -> tuple[np.ndarray, bool]:
    """``arr`` (voxel -> world ``affine``) on the tumour grid (``ref_affine``, ``ref_shape``):
    unchanged when the grids agree, else resampled in world space (``order`` 0 for labels and
    masks, 1 for maps), NaN outside the source.  A source covering less than
    :data:`MIN_GRID_COVERAGE` of the tumour grid is a named error (not co-registered).  Returns
    the array and whether it was resampled."""
    from scipy import ndimage

    a = np.asarray(arr)
    if a.shape == tuple(ref_shape) and np.allclose(affine, ref_affine, atol=1e-3):
        return a, False
    m = np.linalg.solve(np.asarray(affine, float), np.asarray(ref_affine, float))   # ref voxel -> source voxel
    out = ndimage.affine_transform(np.asarray(a, np.float32), m[:3, :3], offset=m[:3, 3], output_shape=tuple(ref_shape),
                                   order=order, mode="constant", cval=np.nan)
    covered = float(np.isfinite(out).mean())
    if covered < MIN_GRID_COVERAGE:
        raise InputError(f"{what} covers only {100 * covered:.0f} % of the tumour labels' grid: all series of a "
                         "patient must be co-registered", patient=patient, path=shown)
    return out, True


def load_observations(patient: str, files: list[VisitFiles], days_from: Any, *, holdout_visits: int | None,
                      config: dict[str, Any]) -> Observations:
    """Observations of every visit in ``files`` (date order).  ``config`` keys: ``adc_w_um2_s``
    (default 3000), ``adc_min_um2_s`` ("patient", the default, or a number), ``nonenhancing``
    ("interval" or "adc")."""
    from twinflow.models.oncology.calibrate import default_holdout

    labels = []
    affine = spacing = None
    shape = None
    resampled = []
    for f in files:
        lab, aff, sp = _load(f.segmentation, patient, f.shown)
        lab = check_3d(lab, patient, f.shown)
        if not np.all(np.isfinite(lab)):
            raise InputError(f"visit {f.visit}: the tumour labels contain non-finite values", patient=patient, path=f.shown)
        if shape is None:
            shape, affine, spacing = lab.shape, aff, sp
        lab, moved = on_grid(lab, aff, affine, shape, order=0, patient=patient, shown=f.shown,
                             what=f"visit {f.visit}'s tumour label map")
        if moved:
            resampled.append(f"{f.visit} labels")
        labels.append(np.round(np.nan_to_num(lab, nan=0.0)).astype(np.int16))
    has = [bool((lab > 0).any()) for lab in labels]
    if not any(has):
        raise InputError("no tumour at any visit: the tumour labels of "
                         f"{', '.join(f.visit for f in files)} are all empty (nothing to calibrate or simulate)",
                         patient=patient, path=files[0].shown if files else None)
    first = has.index(True)
    dropped = [f.visit for f in files[:first]]
    files, labels = files[first:], labels[first:]
    adc_maps, units = [], []
    for f in files:
        adc = None
        if f.adc is not None:
            shown = f.adc_shown or str(f.adc)
            raw, aff, _ = _load(f.adc, patient, shown)
            raw = check_3d(raw, patient, shown)
            raw, moved = on_grid(raw, aff, affine, shape, order=1, patient=patient, shown=shown,
                                 what=f"visit {f.visit}'s ADC map")
            if moved:
                resampled.append(f"{f.visit} ADC")
            try:
                adc, unit = adc_to_um2_s(raw)
            except InputError as exc:
                raise exc.with_context(patient=patient, path=shown) from None
            units.append((f.visit, unit))
        adc_maps.append(adc)
    dates = [f.date for f in files]
    days = [float(d) for d in days_from(dates)]
    n = len(files)
    h = default_holdout(n) if holdout_visits is None else int(holdout_visits)
    cal = list(range(max(n - h, 1)))
    adc_w = float(config.get("adc_w_um2_s", ADC_FREE_WATER))
    nonenh = str(config.get("nonenhancing", "interval"))
    if nonenh not in ("interval", "adc"):
        raise InputError(f"config key nonenhancing must be 'interval' or 'adc', got {nonenh!r}", patient=patient)
    adc_info: dict[str, Any] = {}
    if any(a is not None for a in adc_maps):
        amin_cfg = config.get("adc_min_um2_s", "patient")
        if amin_cfg in (None, "patient"):
            pairs = [(adc_maps[i], labels[i]) for i in cal if adc_maps[i] is not None]
            enh = [(a, lab == LABEL_ENHANCING) for a, lab in pairs]
            use = enh if any(m.any() for _, m in enh) else [(a, lab > 0) for a, lab in pairs]
            if not any(m.any() for _, m in use):
                use = [(a, lab > 0) for a, lab in zip(adc_maps, labels) if a is not None]
            if not any(m.any() for _, m in use):
                raise InputError("no visit has both an ADC map and tumour labels to take the minimum ADC from",
                                 patient=patient, path=files[0].adc_shown)
            adc_min = adc_min_from_rois([a for a, _ in use], [m for _, m in use])
            src = "patient: minimum in tumour over the calibration visits (3x3x3 median, interior voxels)"
        else:
            adc_min, src = float(amin_cfg), "config adc_min_um2_s"
        if adc_w - adc_min < MIN_ADC_RANGE:
            raise InputError(f"the lowest ADC in tumour ({adc_min:.0f} um2/s) is within {MIN_ADC_RANGE:g} of free water "
                             f"({adc_w:g}): no range to map cell fractions (check the ADC units and the tumour labels)",
                             patient=patient, path=next(f.adc_shown for f, a in zip(files, adc_maps) if a is not None))
        adc_info = {"adc_w_um2_s": adc_w, "adc_min_um2_s": float(adc_min), "adc_min_source": src,
                    "units_found": {v: u for v, u in units}, "nonenhancing": nonenh}
    obs, sources = [], []
    for day, lab, adc in zip(days, labels, adc_maps):
        if adc is not None:
            obs.append(observation_from_adc_rois(day, adc, lab, adc_w=adc_w, adc_min=adc_info["adc_min_um2_s"],
                                                 nonenhancing=nonenh))
            sources.append("adc")
        else:
            obs.append(observation_from_labels(day, lab))
            sources.append("labels")
    notes = []
    if resampled:
        notes.append(f"resampled onto the first visit's tumour grid (world coordinates): {', '.join(resampled)}")
    if dropped:
        notes.append(f"visits before the first with tumour ({', '.join(dropped)}) are not used: the model clock "
                     "starts at the first visit that shows tumour")
    return Observations([f.visit for f in files], dates, days, obs, sources, affine, spacing, adc_info, dropped, notes)


# ----------------------------------------------------------------------------- domain

def load_domain(patient: str, shape, affine: np.ndarray, tumour_first: np.ndarray, tumour_any: np.ndarray, *,
                organ_mask: tuple[Path, str] | None, tissue: dict[str, tuple[Path, str]],
                fallback_image: tuple[Path, str] | None, organ_name: str = "organ_mask") -> Domain:
    """The model's domain on the tumour grid (see the module docstring).  ``tissue`` maps the
    tissue series present (name -> (path, display)); ``fallback_image`` is the image a brain
    mask is estimated from when there is neither an organ mask nor tissue maps; ``organ_name``
    is the organ mask's series (``brain_mask`` names the organ: a brain)."""
    notes: list[str] = []
    organ_arr = None
    if organ_mask is not None:
        a, aff, _ = _load(organ_mask[0], patient, organ_mask[1])
        a = check_3d(a, patient, organ_mask[1])
        a, moved = on_grid(a, aff, affine, shape, order=0, patient=patient, shown=organ_mask[1], what="the organ mask")
        organ_arr = np.nan_to_num(np.asarray(a, np.float32), nan=0.0) > 0
        if moved:
            notes.append("the organ mask is resampled onto the tumour grid")
        if not organ_arr.any():
            raise InputError("the organ mask is empty", patient=patient, path=organ_mask[1])
        notes.append("domain: the organ mask series")
    organ = None
    for name, (s1, s2) in TISSUE_SERIES.items():
        if s1 in tissue and s2 in tissue:
            organ = name
            break
        if (s1 in tissue) != (s2 in tissue):
            have, miss = (s1, s2) if s1 in tissue else (s2, s1)
            raise InputError(f"tissue map {have} is given without {miss}: give both or neither",
                             patient=patient, path=tissue[have][1])
    if organ is not None:
        s1, s2 = TISSUE_SERIES[organ]
        maps = []
        for s in (s1, s2):
            a, aff, _ = _load(tissue[s][0], patient, tissue[s][1])
            a = check_3d(a, patient, tissue[s][1]).astype(np.float32)
            if not np.all(np.isfinite(a)) or a.min() < -1e-3 or a.max() > 1 + 1e-3:
                raise InputError(f"tissue map {s} must hold probabilities in [0, 1] (found {np.nanmin(a):.3g} to "
                                 f"{np.nanmax(a):.3g})", patient=patient, path=tissue[s][1])
            a, moved = on_grid(a, aff, affine, shape, order=1, patient=patient, shown=tissue[s][1],
                               what=f"tissue map {s}")
            if moved:
                notes.append(f"tissue map {s} is resampled onto the tumour grid")
            maps.append(np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0))
        p1, p2 = maps
        if organ_arr is not None:
            p1, p2 = np.where(organ_arr, p1, 0.0), np.where(organ_arr, p2, 0.0)
        ratio = SECONDARY_RATIO[organ]
        notes.append(f"tissue-dependent diffusion ({organ}): D = D_1 ({s1} + {ratio:g} x {s2})")
        if organ == "breast":
            notes.append("breast: D_adipose / D_fibroglandular = 0.5 is an assumption (no published per-tissue "
                         "breast diffusivity); tumour voxels the maps leave unclassified count as fibroglandular")
    elif organ_arr is not None:
        organ = "brain" if organ_name == "brain_mask" else "organ"
        p1, p2 = organ_arr.astype(np.float32), np.zeros(shape, np.float32)
        ratio = SECONDARY_RATIO["brain"] if organ == "brain" else 1.0
        notes.append(f"no tissue maps: homogeneous diffusivity in the organ mask ({organ_name})")
    else:
        organ = "brain"
        if fallback_image is None:
            raise InputError("no organ_mask (or brain_mask) series and no tissue maps, and no image to estimate a "
                             "brain mask from", patient=patient)
        import SimpleITK as sitk

        from twinflow.segment.oncology import estimate_brain_mask

        img = sitk.ReadImage(str(fallback_image[0]))
        if img.GetDimension() != 3 or min(img.GetSize()) < MIN_AXIS_VOXELS:
            raise InputError("is not a 3D image: cannot estimate a brain mask from it", patient=patient,
                             path=fallback_image[1])
        m = sitk.GetArrayFromImage(estimate_brain_mask(img)).transpose(2, 1, 0).astype(np.float32)
        _, aff, _ = _load(fallback_image[0], patient, fallback_image[1])
        m, _ = on_grid(m, aff, affine, shape, order=0, patient=patient, shown=fallback_image[1],
                       what="the image a brain mask is estimated from")
        m = np.nan_to_num(m, nan=0.0) > 0
        p1, p2 = m.astype(np.float32), np.zeros(shape, np.float32)
        ratio = SECONDARY_RATIO["brain"]
        notes.append("no organ mask and no tissue maps: a brain is assumed, its mask estimated from the first "
                     "visit's image; homogeneous diffusivity D_w inside it")
    p1 = np.asarray(p1, np.float32)
    p2 = np.asarray(p2, np.float32)
    dom = (p1 + p2) >= 0.5
    if organ != "brain":
        inside = tumour_any if organ_arr is None else tumour_any & organ_arr
        add = inside & ~dom
        if add.any():
            p1 = np.where(add, 1.0 - p2, p1).astype(np.float32)
            dom |= add
    frac = float((tumour_first & dom).sum()) / max(int(tumour_first.sum()), 1)
    if frac < MIN_TUMOUR_IN_DOMAIN:
        where = organ_mask[1] if organ_mask else (tissue[TISSUE_SERIES[organ][0]][1] if organ in TISSUE_SERIES and
                                                   TISSUE_SERIES[organ][0] in tissue else
                                                   (fallback_image[1] if fallback_image else None))
        hint = ("give an organ_mask series (the anatomy is perhaps not a brain)" if organ_mask is None and not tissue
                else "check that the organ mask / tissue maps and the tumour labels are co-registered")
        raise InputError(f"only {100 * frac:.0f} % of the first visit's tumour lies inside the model's domain "
                         f"({organ}): {hint}", patient=patient, path=where)
    if frac < 1.0:
        notes.append(f"{100 * (1 - frac):.1f} % of the first visit's tumour lies outside the domain and is dropped")
    return Domain(organ, dom.astype(np.uint8), p1, p2, ratio, notes)


def prior_params(organ: str, shifts: list[dict] | None = None) -> GrowthParams:
    """The organ's documented prior, with the PGx / somatic prior shifts applied (factors)."""
    p = PRIORS.get(organ, PRIORS["organ"])
    kw = {}
    for s in shifts or []:
        f = s.get("parameter")
        if f in ("d_w_mm2_day", "k_per_day", "alpha_per_gy", "kappa_l_per_mg_h"):
            kw[f] = kw.get(f, getattr(p, f)) * float(s.get("factor", 1.0))
    return replace(p, **kw) if kw else p
