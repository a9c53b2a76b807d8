"""Quality control of an automatic LV segmentation: per-slice confidence and plausibility flags.

:func:`qc_record` returns a JSON-ready record (rounded numbers, sorted keys) for
``segmentation.json`` / ``twin.json`` and the report.  A segmentation is *plausible* when no
flag is raised; a patient whose segmentation is not plausible should be shown as such, not
calibrated silently.

Per-slice confidence (0..1) is the product of four scores, each 1 for a clean slice:

``wall``
    fraction of rays from the pool centre that cross a myocardial wall (>= 4 mm darker than
    midway between blood and surroundings) at ED and ES, the smaller of the two, rescaled so
    that 0.75 (the acceptance limit of the segmentation) gives 0.5 and 1.0 gives 1;
``contrast``
    blood-to-wall contrast ``(blood - wall) / blood`` at ED: 1 from 0.4 up, falling linearly
    to 0 at 0.1 (a pool barely brighter than its wall has an uncertain border);
``temporal``
    largest change of the pool area between consecutive phases, relative to the slice's
    largest area: 1 up to 0.25, 0 at 0.75 (a border that jumps from one frame to the next);
``enclosure``
    fraction of the ED pool border that touches the myocardium ring where it is at least about
    two pixels thick: 1 from 0.9 up, 0 at 0.5.

Patient-level flags (code, severity, message, slices); the segmentation is implausible when
any flag other than the two warnings (``phase_area_jump``, ``low_confidence_slices``) is raised:

* ``ef_out_of_range``: EF outside 5-85 %;
* ``esv_not_below_edv``: ED and ES coincide or ESV >= EDV;
* ``slice_volume_jump``: an interior slice whose ED (or ES) pool area differs from the mean
  of its two neighbours by more than half of that mean;
* ``phase_area_jump``: a slice whose pool area changes by more than 40 % of its largest
  area between consecutive phases;
* ``cavity_outside_myocardium``: a slice at ED or ES where less than 70 % of the pool border
  touches the myocardium (or no myocardium was found); only a warning when the slices
  concerned hold less than 10 % of the ED volume (a thin apical cap);
* ``gap_in_stack``: a slice without LV between slices with LV;
* ``too_few_slices``: fewer than 3 slices with LV;
* ``low_confidence_slices``: slices with confidence < 0.5.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from scipy import ndimage as ndi

from twinflow.segment.cardiac import CardiacSegmentation, _disk, _ring_coverage, lv_function

__all__ = ["qc_record", "EF_RANGE_PERCENT"]

#: plausible ejection fraction (%)
EF_RANGE_PERCENT = (5.0, 85.0)
_SLICE_JUMP = 0.5
_PHASE_JUMP = 0.4
_MIN_ENCLOSURE = 0.7
_LOW_CONFIDENCE = 0.5
_MINOR_SHARE = 0.10  # a problem confined to slices holding less than this share of the EDV is a warning
_WARNINGS = ("phase_area_jump", "low_confidence_slices")  # shown, but do not make a segmentation implausible


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 at ``lo``, 1 at ``hi``, linear between (``lo > hi`` gives a falling ramp)."""
    if not math.isfinite(x):
        return 0.0
    return float(min(max((x - lo) / (hi - lo), 0.0), 1.0))


def _levels(img: np.ndarray, pool: np.ndarray, px: float) -> tuple[float, float]:
    ring = ndi.binary_dilation(pool, _disk(5.0 / px)) & ~pool
    return float(np.median(img[pool])), float(np.median(img[ring])) if ring.any() else float("nan")


def _enclosure(pool: np.ndarray, myo: np.ndarray) -> float:
    """Fraction of the pool's border pixels with a myocardium pixel among their 8 neighbours."""
    if not myo.any():
        return 0.0
    border = pool & ~ndi.binary_erosion(pool)
    if not border.any():
        return 0.0
    # walls thinner than about two pixels do not count as enclosing the cavity
    touch = ndi.binary_dilation(ndi.binary_erosion(myo), np.ones((3, 3), bool), iterations=2)
    return float((border & touch).sum()) / float(border.sum())


def qc_record(seg: CardiacSegmentation, image: np.ndarray, function: Mapping[str, Any] | None = None) -> dict:
    """Per-slice confidence and plausibility flags for ``seg``.

    ``image`` is the [phase, slice, row, col] array the segmentation was made on
    (:func:`twinflow.segment.cardiac.cine_array`); ``function`` is ``lv_function(seg)``
    (computed when omitted).  The myocardium at ED and ES is used where present.
    """
    fn = dict(function) if function is not None else lv_function(seg)
    T, Z = seg.n_phases, seg.n_slices
    px = math.sqrt(seg.spacing_mm[0] * seg.spacing_mm[1])
    px_area = seg.spacing_mm[0] * seg.spacing_mm[1]
    ed, es = int(fn["ed_frame"]), int(fn["es_frame"])
    area = seg.blood.sum(axis=(2, 3)).astype(float) * px_area  # [T, Z] mm2
    slices = [z for z in range(Z) if seg.present[:, z].any()]
    flags: list[dict[str, Any]] = []

    def flag(code: str, message: str, where: list[int] | None = None, warning: bool = False) -> None:
        flags.append({"code": code, "severity": "warning" if warning or code in _WARNINGS else "implausible",
                      "message": message, "slices": sorted(int(z) for z in (where or []))})

    per_slice = []
    low, jumps, outside = [], [], []
    for z in slices:
        scores: dict[str, float] = {}
        covs = []
        for t in (ed, es):
            pool = seg.blood[t, z]
            if pool.any():
                sm = ndi.gaussian_filter(np.asarray(image[t, z], dtype=np.float32), 0.7)
                b, w = _levels(sm, pool, px)
                covs.append(_ring_coverage(sm, pool, px, b, w) if math.isfinite(w) else 0.0)
        scores["wall"] = _ramp(min(covs), 0.5, 1.0) if covs else 0.0
        pool_ed = seg.blood[ed, z]
        if pool_ed.any():
            b, w = _levels(np.asarray(image[ed, z], dtype=np.float32), pool_ed, px)
            scores["contrast"] = _ramp((b - w) / b if b > 0 else float("nan"), 0.1, 0.4)
        else:
            scores["contrast"] = 0.0
        a = area[:, z]
        step = np.abs(np.diff(np.concatenate([a, a[:1]]))) / max(a.max(), 1e-9)
        scores["temporal"] = _ramp(float(step.max()), 0.75, 0.25)
        if float(step.max()) > _PHASE_JUMP:
            jumps.append(z)
        enc = []
        for t in (ed, es):
            if seg.blood[t, z].any():
                e = _enclosure(seg.blood[t, z], seg.myocardium[t, z])
                enc.append(e)
                if e < _MIN_ENCLOSURE:
                    outside.append(z)
        scores["enclosure"] = _ramp(enc[0] if enc else 0.0, 0.5, 0.9)
        conf = float(np.prod(list(scores.values())))
        if conf < _LOW_CONFIDENCE:
            low.append(z)
        per_slice.append({
            "slice": int(z),
            "confidence": round(conf, 3),
            "scores": {k: round(v, 3) for k, v in sorted(scores.items())},
            "ed_area_mm2": round(float(area[ed, z]), 1),
            "es_area_mm2": round(float(area[es, z]), 1),
            "phases_with_lv": int(seg.present[:, z].sum()),
        })

    ef = fn.get("ef_percent")
    if ef is None or not math.isfinite(float(ef)) or not EF_RANGE_PERCENT[0] <= float(ef) <= EF_RANGE_PERCENT[1]:
        flag("ef_out_of_range", f"ejection fraction {ef if ef is None else round(float(ef), 1)} % is outside "
                                f"{EF_RANGE_PERCENT[0]:g}-{EF_RANGE_PERCENT[1]:g} %")
    if ed == es or float(fn["esv_ml"]) >= float(fn["edv_ml"]):
        flag("esv_not_below_edv", f"end-systolic volume {float(fn['esv_ml']):.1f} ml is not below end-diastolic "
                                  f"volume {float(fn['edv_ml']):.1f} ml (frames {es} / {ed})")
    if len(slices) < 3:
        flag("too_few_slices", f"the LV was found on {len(slices)} slice(s)", slices)
    if slices:
        gaps = [z for z in range(slices[0], slices[-1] + 1) if z not in slices]
        if gaps:
            flag("gap_in_stack", "slices without LV between slices with LV", gaps)
    vjump = []
    for i in range(1, len(slices) - 1):
        z0, z, z1 = slices[i - 1], slices[i], slices[i + 1]
        if z1 - z0 != 2:
            continue
        for t in (ed, es):
            m = 0.5 * (area[t, z0] + area[t, z1])
            if m > 0 and abs(area[t, z] - m) > _SLICE_JUMP * m:
                vjump.append(z)
                break
    if vjump:
        flag("slice_volume_jump", "pool area differs from the mean of the neighbouring slices by more than "
                                  f"{100 * _SLICE_JUMP:.0f} %", vjump)
    if jumps:
        flag("phase_area_jump", f"pool area changes by more than {100 * _PHASE_JUMP:.0f} % of its maximum "
                                "between consecutive phases", jumps)
    if outside:
        outside = sorted(set(outside))
        share = float(area[ed, outside].sum()) / max(float(area[ed, slices].sum()), 1e-9)
        flag("cavity_outside_myocardium", f"less than {100 * _MIN_ENCLOSURE:.0f} % of the pool border touches the "
                                          f"myocardium at ED or ES ({100 * share:.0f} % of the ED volume)", outside,
             warning=share < _MINOR_SHARE)
    if low:
        flag("low_confidence_slices", f"slice confidence below {_LOW_CONFIDENCE}", low)
    return {
        "plausible": not any(f["severity"] == "implausible" for f in flags),
        "flags": flags,
        "per_slice": per_slice,
        "min_slice_confidence": round(min((p["confidence"] for p in per_slice), default=0.0), 3),
        "ef_range_percent": list(EF_RANGE_PERCENT),
        "method": "per-slice confidence = wall x contrast x temporal x enclosure (docs/cardiac-segmentation.md)",
    }
