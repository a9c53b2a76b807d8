"""Tumour segmentation from whatever MR series a visit has, in the brain or any other organ.

Label convention (twinflow): 0 background, 1 enhancing tumour, 2 non-enhancing tumour /
oedema, 3 necrosis / non-enhancing core enclosed by the enhancing tumour.  BraTS label files
are converted by :func:`convert_labels`.

Method (details and measured accuracy in ``docs/segmentation.md``)
-----------------------------------------------------------------
1. **Inputs** are checked first (:mod:`twinflow.segment.tumour_inputs`): every problem is an
   :class:`~twinflow.errors.InputError` naming patient, file and problem.  The reference grid is
   the first present of T1post, FLAIR, T2, T1; other series are resampled onto it.
2. **Domain.**  A given organ mask (``organ_mask``; ``brain_mask`` is a synonym) is used as is.
   Without one: with an ROI, the ROI box (air excluded) is the domain, whatever the organ;
   without an ROI, a brain mask is estimated (Otsu + erosion) and checked for a plausible
   brain volume -- other anatomy needs an organ mask or an ROI.
3. **Bias field.**  N4 inside the domain for magnitude series (not for ADC), except in ROI
   mode, whose statistics are local to the box.
4. **Evidence.**  Robust z-scores (median, 1.4826 MAD) over the domain, or over the ROI box:
   offset and scale free, so normalised images with negative values work.
   ``enhancement`` = z of (z T1post - z T1) when a pre-contrast T1 exists, else z of T1post;
   ``hyperintensity`` = z of FLAIR (else T2).
5. **With FLAIR/T2** (:mod:`twinflow.segment.glioma`): whole tumour by iterated half-maximum
   thresholding of FLAIR, enhancing tumour by a two-class mixture split of T1post inside it,
   core = enhancing rim closed and hole-filled.
6. **T1post alone** (:mod:`twinflow.segment.enhancing`): the lesion inside a box -- the user's
   ROI, the previous visit's tumour plus a margin, or boxes drawn around automatic detections
   -- by box-local standardisation, rejection of structures crossing the box's border,
   half-maximum boundary, hole filling; faint rim within 5 mm = label 2.
7. **Never silently empty**: an ROI in which nothing is found raises an InputError with the
   intensity statistics that led there; an empty automatic result carries a warning note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from twinflow.errors import InputError
from twinflow.segment.enhancing import (
    NoLesion,
    boxes_around,
    central_part,
    detect_lesions,
    extend_rim,
    segment_in_box,
)
from twinflow.segment.glioma import segment_glioma
from twinflow.segment.lesion import ball, bbox, fill_holes, grow_box, robust_z
from twinflow.segment.tumour_inputs import (
    BRAIN_MIN_RADIUS_MM,
    BRAIN_ML_RANGE,
    SERIES,
    Inputs,
    canonical_series_name,
    check_contrast,
    check_image,
    estimate_brain_mask,
    finite_array,
    foreground,
    image_extent_lps,
    n4,
    on_grid,
    parse_roi,
    physical_points_zyx,
    roi_mask,
    same_grid,
    spacing_zyx,
    to_image,
    voxel_ml,
)

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
    "roi_from_mask",
    "overlay_png",
]

LABEL_ENHANCING = 1
LABEL_NONENHANCING = 2
LABEL_NECROSIS = 3
LABEL_NAMES = {LABEL_ENHANCING: "enhancing", LABEL_NONENHANCING: "nonenhancing_oedema", LABEL_NECROSIS: "necrosis"}

#: accepted values of ``label_convention``
LABEL_CONVENTIONS = ("twinflow", "brats", "brats2013", "brats2021", "brats2023")

#: ROI without a mask in a head: the estimated brain mask grown by this (superficial lesions)
ROI_BRAIN_MARGIN_MM = 3.0
#: N4 fits the bias field to voxels within this robust z of the organ's median (lesions excluded)
N4_FIT_Z = 2.0
#: closing that makes the whole tumour (T1post only) one body
CLOSE_MM = 3.0
#: search margin around the previous visit's tumour
PRIOR_MARGIN_MM = 15.0
#: smallest lesion component kept inside an ROI / prior box (one voxel is allowed in principle)
MIN_SPECK_ML = 0.0

_physical_points_zyx = physical_points_zyx  # kept for callers of the old private name
_voxel_ml_of = voxel_ml  # score() has a parameter of that name


# ----------------------------------------------------------------------------- results


@dataclass
class SegmentationResult:
    """Output of :func:`segment_tumour`.

    ``label`` is what the model uses (the expert label when one was given, else the automatic
    one); ``automatic`` is always the automatic result; ``scores`` compares them when an expert
    label was given.  ``notes`` records how the result was obtained (JSON-serialisable).
    ``brain_mask`` is the domain that was searched (the organ mask, the estimated brain, or
    the ROI box without air).
    """

    label: sitk.Image
    automatic: sitk.Image
    brain_mask: sitk.Image
    volumes_ml: dict[str, float]
    automatic_volumes_ml: dict[str, float]
    source: str  # "automatic" | "roi" | "prior" | "expert"
    notes: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] | None = None

    @property
    def organ_mask(self) -> sitk.Image:
        return self.brain_mask

    def qc(self) -> dict[str, Any]:
        """QC record (no paths, no identifiers)."""
        out: dict[str, Any] = {
            "label_source": self.source,
            "volumes_ml": self.volumes_ml,
            "automatic_volumes_ml": self.automatic_volumes_ml,
            "label_convention": "1=enhancing, 2=non-enhancing/oedema, 3=necrosis/non-enhancing core",
            "method": self.notes,
        }
        if self.scores is not None:
            out["automatic_vs_expert"] = self.scores
        return out


def _volumes(lab: np.ndarray, vml: float) -> dict[str, float]:
    out = {f"{LABEL_NAMES[k]}_ml": float(np.count_nonzero(lab == k)) * vml for k in sorted(LABEL_NAMES)}
    out["whole_tumour_ml"] = float(np.count_nonzero(lab > 0)) * vml
    out["tumour_core_ml"] = float(np.count_nonzero((lab == LABEL_ENHANCING) | (lab == LABEL_NECROSIS))) * vml
    return out


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _jsonable(v)
        elif isinstance(v, (np.floating, float)):
            out[k] = float(round(float(v), 6))
        elif isinstance(v, (np.integer,)):
            out[k] = int(v)
        else:
            out[k] = v
    return out


def _describe(stats: Mapping[str, Any]) -> str:
    keys = [("box_median", "median {:.4g}"), ("box_robust_sd", "robust SD {:.4g}"), ("max_z", "max z {:.2f}"),
            ("max_smoothed_z", "max smoothed z {:.2f}"), ("seed_threshold_z", "seed level z {:.2f}"),
            ("candidates", "{} candidate(s)"), ("rejected_crossing_the_box_border", "{} crossing the box border"),
            ("rejected_thin", "{} thin (vessel-like)")]
    parts = [fmt.format(stats[k]) for k, fmt in keys if k in stats and stats[k] is not None]
    return ", ".join(parts)
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
        if isinstance(auto, sitk.Image) and isinstance(expert, sitk.Image) and not same_grid(auto, expert):
            raise ValueError("automatic and expert labels are on different grids")
        voxel_ml = _voxel_ml_of(ref) if voxel_ml is None else voxel_ml
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


# ------------------------------------------------------------------------------ pipeline


def _series(images: Mapping[str, Any], inp: Inputs, notes: dict[str, Any]) -> dict[str, tuple[str, sitk.Image]]:
    """canonical name -> (name as given, image) for the series the method reads; checked."""
    if not isinstance(images, Mapping):
        raise inp.error(f"images must map series names to images, got {type(images).__name__}")
    named: dict[str, tuple[str, sitk.Image]] = {}
    for given in sorted(images, key=str):
        img = images[given]
        canon = canonical_series_name(given)
        if img is None or canon not in SERIES:
            continue
        if canon in named:
            raise inp.error(f"series {named[canon][0]!r} and {given!r} are both {canon}; give one", given)
        check_image(img, str(given), inp)
        named[canon] = (str(given), img)
    ignored = sorted(str(k) for k in images if canonical_series_name(k) not in SERIES)
    if ignored:
        notes["series_ignored"] = ignored
    if not any(n in named for n in ("T1post", "FLAIR", "T2", "T1")):
        raise inp.error(f"no usable series among {sorted(str(k) for k in images)}: tumour segmentation needs "
                        "T1post (T1c, T1Gd), FLAIR, T2 or T1")
    return named


def _resampled(img: sitk.Image, given: str, ref: sitk.Image, ref_name: str, inp: Inputs, *, label: bool) -> sitk.Image:
    out = on_grid(img, ref, label=label)
    if not same_grid(img, ref):
        # a series that does not overlap the reference in space resamples to all default values
        ones = sitk.Image(img.GetSize(), sitk.sitkUInt8) + 1
        ones.CopyInformation(img)
        probe = sitk.Resample(ones, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        if not sitk.GetArrayViewFromImage(probe).any():
            raise inp.error(f"{given} does not overlap {ref_name} in space (image extents, LPS mm: "
                            f"{_fmt_box(image_extent_lps(img))} vs {_fmt_box(image_extent_lps(ref))}); "
                            "the series of a visit must be co-registered", given)
    return out


def _fmt_box(b: Sequence[float]) -> str:
    return ",".join(f"{v:.1f}" for v in b)


def _estimated_brain(ref: sitk.Image, arrays: Mapping[str, np.ndarray], valid: np.ndarray) -> np.ndarray:
    src = next(n for n in ("T1", "T1post", "FLAIR", "T2") if n in arrays)
    img = sitk.GetImageFromArray(np.where(valid, arrays[src], np.nan).astype(np.float32))
    img.CopyInformation(ref)
    return (sitk.GetArrayFromImage(estimate_brain_mask(img)) > 0) & valid


def _domain(
    ref: sitk.Image, ref_name: str, arrays: Mapping[str, np.ndarray], valid: np.ndarray, *,
    mask: sitk.Image | None, mask_key: str | None, box: np.ndarray | None, anatomy: str | None,
    inp: Inputs, notes: dict[str, Any], names: Mapping[str, str],
) -> tuple[np.ndarray, bool]:
    """(domain, estimated) -- see the module doc, step 2."""
    if mask is not None:
        check_image(mask, mask_key, inp, what="mask")
        m = sitk.GetArrayFromImage(_resampled(mask, mask_key, ref, ref_name, inp, label=True))
        m = np.nan_to_num(m.astype(np.float64)) > 0
        if not m.any():
            raise inp.error(f"the {mask_key.replace('_', ' ')} is empty (no voxel > 0 on the {ref_name} grid)", mask_key)
        notes["domain"] = f"given {mask_key}"
        return m & valid, False
    if box is not None:
        fg = foreground(np.where(valid, arrays[ref_name], np.nan)) & valid
        if anatomy in (None, "brain"):
            brain = _estimated_brain(ref, arrays, valid)
            ml = float(brain.sum()) * voxel_ml(ref)
            centre = central_part(box)
            inside = float((brain & centre).sum()) / max(1, int(centre.sum()))
            if BRAIN_ML_RANGE[0] <= ml <= BRAIN_ML_RANGE[1] and inside >= 0.5:
                near = ndi.binary_dilation(brain, ball(spacing_zyx(ref), ROI_BRAIN_MARGIN_MM))
                notes["domain"] = (f"no organ mask: estimated brain mask (+{ROI_BRAIN_MARGIN_MM:g} mm) inside the roi "
                                   "box, air excluded")
                return near & fg, True
        notes["domain"] = "no organ mask: the roi box without air"
        return fg, False
    if anatomy not in (None, "brain"):
        raise inp.error(f"automatic segmentation of {anatomy} anatomy needs an organ_mask series or an roi "
                        "(the brain mask estimate applies to heads only)", ref_name)
    src = next(n for n in ("T1", "T1post", "FLAIR", "T2") if n in arrays)
    named_src = names.get
    brain = _estimated_brain(ref, arrays, valid)
    ml = float(brain.sum()) * voxel_ml(ref)
    radius = float(ndi.distance_transform_edt(np.pad(brain, 1), sampling=spacing_zyx(ref)).max())
    lo, hi = BRAIN_ML_RANGE
    if not (lo <= ml <= hi and radius >= BRAIN_MIN_RADIUS_MM):
        raise inp.error(f"no organ mask and no roi, and {named_src(src)} does not look like a head: the estimated "
                        f"brain is {ml:.0f} ml (expected {lo:.0f}-{hi:.0f} ml) and holds a ball of radius "
                        f"{radius:.0f} mm (a brain holds one of {BRAIN_MIN_RADIUS_MM:.0f} mm); give an organ_mask "
                        "(or brain_mask) series or an roi", src)
    notes["domain"] = "estimated brain mask (no brain_mask given)"
    return brain, True


def _labels_from_box(found, region: np.ndarray, sp: np.ndarray, label: np.ndarray, notes: dict[str, Any]) -> None:
    """Write one box's T1post-only lesion into ``label``: 1 enhancing, 3 enclosed core, 2 faint rim."""
    enh = found.enhancing & found.mask
    core = found.mask & ~enh
    rim = extend_rim(found.z, found.mask, region, sp, notes, reference_z=found.reference_z)
    whole = found.mask | rim
    # one body: a closing of CLOSE_MM bridges the notches between enhancing nodules (as an
    # expert's outline does), holes filled
    whole = fill_holes(ndi.binary_closing(whole, ball(sp, CLOSE_MM)) | whole, sp) & region
    label[whole & (label == 0)] = LABEL_NONENHANCING
    label[core & (label != LABEL_ENHANCING)] = LABEL_NECROSIS
    label[enh] = LABEL_ENHANCING


def segment_tumour(
    images: Mapping[str, sitk.Image],
    *,
    brain_mask: sitk.Image | None = None,
    organ_mask: sitk.Image | None = None,
    roi_lps_mm: str | Sequence[float] | None = None,
    prior_mask: sitk.Image | None = None,
    expert_label: sitk.Image | None = None,
    label_convention: str = "twinflow",
    bias_correction: bool = True,
    anatomy: str | None = None,
    patient: str | None = None,
    paths: Mapping[str, str] | None = None,
) -> SegmentationResult:
    """Segment a tumour into 1 enhancing / 2 non-enhancing+oedema / 3 necrosis (non-enhancing core).

    ``images`` maps series names to 3D images (T1post/T1c/T1Gd, T1, FLAIR, T2, ADC; other
    keys are ignored).  ``organ_mask`` (or its synonym ``brain_mask``) is the domain;
    ``roi_lps_mm`` (box x0,y0,z0,x1,y1,z1 in LPS mm) and ``prior_mask`` (previous visit's
    tumour, any label image > 0) guide the search.  ``expert_label`` in ``label_convention``
    replaces the automatic result for the model and is scored against it.  ``anatomy``
    ("brain", "breast", ...; None = brain unless an organ mask or ROI says otherwise) only
    matters without a mask and an ROI.  ``patient`` and ``paths`` (display path per series
    name, ``organ_mask``/``brain_mask``, ``label``, ``prior``, ``roi``) name the patient and
    file in error messages.  Every bad input raises :class:`~twinflow.errors.InputError`.
    """
    inp = Inputs(patient, dict(paths or {}))
    notes: dict[str, Any] = {}
    named = _series(images, inp, notes)
    if brain_mask is not None and organ_mask is not None:
        raise inp.error("both organ_mask and brain_mask were given; they are synonyms, give one", "organ_mask")
    mask_img, mask_key = (organ_mask, "organ_mask") if organ_mask is not None else (brain_mask, "brain_mask")
    if mask_img is None:
        mask_key = None
    conv = str(label_convention).lower()
    if conv not in LABEL_CONVENTIONS:
        raise inp.error(f"unknown label convention {label_convention!r}; expected one of {', '.join(LABEL_CONVENTIONS)}",
                        "label")

    ref_name = next(n for n in ("T1post", "FLAIR", "T2", "T1") if n in named)
    ref = named[ref_name][1]
    sp = spacing_zyx(ref)
    vml = voxel_ml(ref)
    notes.update({"reference_series": ref_name, "voxel_mm": [float(s) for s in ref.GetSpacing()]})

    arrays: dict[str, np.ndarray] = {}
    for n in SERIES:
        if n in named:
            given, img = named[n]
            arrays[n] = finite_array(_resampled(img, given, ref, ref_name, inp, label=False), given, inp, notes)
    valid = np.ones(ref.GetSize()[::-1], bool)
    for n, a in arrays.items():
        if n != "ADC":
            valid &= np.isfinite(a)
    if not valid.any():
        raise inp.error("no voxel has finite values in every series", ref_name)

    # ROI
    box = None
    source = "automatic"
    try:
        roi = parse_roi(roi_lps_mm)
    except ValueError as exc:
        raise inp.error(str(exc), "roi") from None
    if roi is not None:
        box = sitk.GetArrayFromImage(roi_mask(ref, roi)) > 0
        if not box.any():
            raise inp.error(f"roi {_fmt_box(roi)} (LPS mm) lies outside the image ({ref_name} covers "
                            f"{_fmt_box(image_extent_lps(ref))}); check the coordinates are LPS (DICOM/ITK), "
                            "not RAS", "roi")
        notes["roi_lps_mm"] = list(roi)
        source = "roi"

    for n, a in arrays.items():
        check_contrast(a, valid, named[n][0], inp, "in the whole image")
    domain, estimated = _domain(ref, ref_name, arrays, valid, mask=mask_img, mask_key=mask_key, box=box,
                                anatomy=anatomy, inp=inp, notes=notes, names={k: v[0] for k, v in named.items()})
    notes["domain_volume_ml"] = float(domain.sum()) * vml
    if box is not None:
        if not (box & domain).any():
            raise inp.error(f"roi {_fmt_box(roi)} (LPS mm) does not overlap the {mask_key or 'tissue'} "
                            f"({box.sum()} roi voxels, none inside)", "roi")
    for n, a in arrays.items():
        where = "inside the roi" if box is not None else f"inside the {mask_key or 'domain'}"
        check_contrast(a, (box & domain) if box is not None else domain, named[n][0], inp, where)

    prior = None
    if prior_mask is not None and box is None:
        check_image(prior_mask, "prior", inp, what="mask")
        prior = np.nan_to_num(sitk.GetArrayFromImage(_resampled(prior_mask, "prior", ref, ref_name, inp, label=True))
                              .astype(np.float64)) > 0
        if prior.any():
            source = "prior"
            notes["prior_margin_mm"] = PRIOR_MARGIN_MM
        else:
            notes["prior"] = "empty prior ignored"
            prior = None

    # bias field and evidence
    stats_region = (box & domain) if box is not None else domain
    use_n4 = bias_correction and box is None
    notes["bias_correction"] = "N4" if use_n4 else ("none (roi: statistics are local)" if bias_correction else "none")
    z: dict[str, np.ndarray] = {}
    for n, a in arrays.items():
        if n == "ADC":
            continue
        filled = np.where(valid, a, np.nanmedian(a[stats_region]))
        if use_n4 and np.nanmin(a[domain]) < 0:
            # magnitude images are never negative: this one was intensity-normalised by a
            # pipeline (BraTS, nnU-Net preprocessing) that corrects the bias field first
            notes.setdefault("n4_skipped_normalised_input", []).append(n)
        elif use_n4:
            img = sitk.GetImageFromArray(filled.astype(np.float32))
            img.CopyInformation(ref)
            # the bias field is fitted to normal tissue: lesions (and CSF) would pull it
            zpre = robust_z(filled, domain)[0]
            fit = domain & (np.abs(zpre) < N4_FIT_Z)
            filled = sitk.GetArrayFromImage(n4(img, fit if fit.sum() > 0.5 * domain.sum() else domain)).astype(np.float64)
        z[n] = robust_z(filled, stats_region)[0]
    notes["series_used"] = sorted(arrays)
    ze = None
    if "T1post" in z:
        if "T1" in z:
            ze = robust_z(z["T1post"] - z["T1"], stats_region)[0]
            notes["enhancement"] = "z(T1post) - z(T1), robust z"
        else:
            ze = z["T1post"]
            notes["enhancement"] = "T1post robust z (no pre-contrast T1)"
    hyper_name = "FLAIR" if "FLAIR" in z else ("T2" if "T2" in z else None)
    zh = z[hyper_name] if hyper_name else None
    if hyper_name:
        notes["hyperintensity"] = f"{hyper_name} robust z"

    label = np.zeros(domain.shape, np.uint8)
    if zh is not None:
        masks = segment_glioma(zh, ze, domain, sp, notes, search=box,
                               prefer=None if prior is None else ndi.binary_dilation(prior, ball(sp, 2.0)))
        label[masks["whole"]] = LABEL_NONENHANCING
        label[masks["core"]] = LABEL_NECROSIS
        label[masks["enhancing"]] = LABEL_ENHANCING
        notes["method"] = "glioma: FLAIR half-maximum lesion, T1post mixture split inside it, rim closed and filled"
        if box is not None and not label.any():
            v = arrays[hyper_name][box & domain]
            raise inp.error(f"no {hyper_name}-hyperintense lesion in the roi {_fmt_box(roi)}: {hyper_name} there has "
                            f"median {np.median(v):.4g}, robust z of its brightest voxel "
                            f"{float(np.max(zh[box & domain])):.2f}, but the lesion needs z > "
                            f"{notes.get('hyperintensity_threshold_z', 2.0):.2f} over a connected region",
                            named[hyper_name][0])
    elif ze is not None:
        enh_src = "T1post"
        evidence = arrays["T1post"] if "T1" not in arrays else ze
        evidence = np.where(valid, evidence, np.nan)
        boxes: list[np.ndarray] = []
        if box is not None:
            boxes = [box]
        else:
            if prior is not None:
                pb = grow_box(bbox(prior), prior.shape, sp, PRIOR_MARGIN_MM)
                m = np.zeros_like(prior)
                m[pb] = True
                boxes.append(m)
            det_notes: dict[str, Any] = {}
            found = detect_lesions(ze, domain, sp, vml, det_notes, estimated_mask=estimated)
            notes["detection"] = det_notes
            for b in boxes_around(found, sp):
                if not any((b & other).any() for other in boxes):
                    boxes.append(b)
        box_notes = []
        for b in boxes:
            region = b & domain & valid
            try:
                found_box = segment_in_box(np.nan_to_num(evidence, nan=float(np.nanmedian(evidence[region]))),
                                           region, b, sp, min_voxels=max(1.0, MIN_SPECK_ML / vml))
            except NoLesion as exc:
                if box is not None:
                    raise inp.error(
                        f"no enhancing lesion found in the roi {_fmt_box(roi)} (LPS mm): {exc.reason} "
                        f"({_describe(exc.stats)}); check that the roi surrounds the lesion and that "
                        f"{named[enh_src][0]} is contrast-enhanced", named[enh_src][0]) from None
                box_notes.append({"box": "no lesion", "reason": exc.reason, **_jsonable(exc.stats)})
                continue
            box_notes.append(_jsonable(found_box.notes))
            _labels_from_box(found_box, region, sp, label, notes)
        notes["boxes"] = box_notes
        notes["method"] = "enhancing lesion in a box: local robust z, border-crossing structures rejected, half maximum"
    else:
        if box is not None:
            raise inp.error(f"an roi needs a contrast-enhanced T1 (T1post), FLAIR or T2 to segment; this visit has "
                            f"only {', '.join(sorted(named))}", named[ref_name][0])
        notes["warning"] = "no tumour-sensitive series (T1post, FLAIR or T2): empty segmentation"
    label[~domain] = 0
    if not label.any() and "warning" not in notes:
        notes["warning"] = "no tumour found: empty segmentation (give an roi to point at a lesion)"

    auto_img = to_image(label, ref)
    auto_vol = _volumes(label, vml)
    result_label, result_vol, scores = auto_img, auto_vol, None
    if expert_label is not None:
        check_image(expert_label, "label", inp, what="label image")
        exp_on = _resampled(expert_label, "label", ref, ref_name, inp, label=True)
        try:
            exp = convert_label_image(exp_on, conv)
        except ValueError as exc:
            raise inp.error(f"expert label: {exc}{_convention_hint(exp_on, conv)}", "label") from None
        result_label = exp
        result_vol = _volumes(sitk.GetArrayViewFromImage(exp), vml)
        scores = score(auto_img, exp)
        notes["expert_label_convention"] = conv
        source = "expert"
    return SegmentationResult(
        label=result_label,
        automatic=auto_img,
        brain_mask=to_image(domain, ref),
        volumes_ml=result_vol,
        automatic_volumes_ml=auto_vol,
        source=source,
        notes=_jsonable(notes),
        scores=scores,
    )


def _convention_hint(img: sitk.Image, conv: str) -> str:
    a = sitk.GetArrayViewFromImage(img)
    if not np.all(np.isfinite(a)):
        return ""
    present = set(np.unique(np.round(a)).astype(int).tolist())
    if conv == "twinflow" and present <= {0, 1, 2, 3, 4} and 4 in present:
        which = "brats2013" if 3 in present else "brats2021"
        return (f" -- this looks like a BraTS file: set models.oncology.segment.label_convention to {which} "
                "(see config/README.md)")
    return ""
# ----------------------------------------------------------------------------- overlay

_COLOURS = {1: (255, 40, 40), 2: (40, 220, 40), 3: (60, 120, 255)}


def overlay_png(image: sitk.Image, mask: sitk.Image, out_png: str | Path, *, expert: sitk.Image | None = None) -> dict[str, Any]:
    """Write a deterministic RGB PNG: label outlines over the slice with the most tumour.

    Cut across the acquired slice axis of the image (axial for isotropic data), shown in
    radiological convention like the ingest PNGs (anterior/superior up, patient's right on
    the viewer's left).  Colours: 1 red, 2 green, 3 blue; an ``expert`` label, if given, is
    outlined in yellow.  Returns {"slice_axis", "slice_index"} for the QC record.
    """
    from twinflow.io.imaging import canonicalise, slice_axis

    img = canonicalise(sitk.Cast(image, sitk.sitkFloat32))
    lab = canonicalise(on_grid(mask, image, label=True))
    a = sitk.GetArrayFromImage(img).astype(np.float64)
    m = sitk.GetArrayFromImage(lab).astype(np.int64)
    ex = None if expert is None else sitk.GetArrayFromImage(canonicalise(on_grid(expert, image, label=True))) > 0
    axis = slice_axis(img.GetSpacing())  # canonical axis 0..2 -> array axis 2 - axis
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
