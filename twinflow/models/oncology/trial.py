"""The oncology twin's part of in-silico trials: radiotherapy and temozolomide schedules in
virtual patients drawn from the cohort's calibrated tumour twins (:class:`OncologyTrial`).

Population (the documented choice: **cohort twins' posteriors + published parameter
ranges**).  A virtual patient

* takes a source twin, uniformly among the cohort's oncology twins: its anatomy (tissue maps)
  and its tumour as imaged at the first visit (``maps/initial_density``, before treatment),
  i.e. a newly diagnosed tumour on a real brain;
* has a resection drawn from ``resection`` (probabilities of ``biopsy``, ``partial``,
  ``complete``; default biopsy only): a resection removes the cells of the inner ``fraction``
  of the enhancing region (``u >= 0.8``) counted outward from its centroid (complete: all of
  it, partial: half), leaving the infiltrating margin;
* takes each growth parameter the twin identifies (``identifiable`` in ``twin.json``: usually
  ``D_w`` and ``k``) from the twin's Laplace posterior (log-normal with its SD) times a
  between-patient factor ``exp(N(0, between_patient_log_sd))`` (default 0.25, an assumption:
  the cohort is too small to estimate it);
* takes each parameter the twin does not identify (usually ``alpha`` and ``kappa``: the
  calibration window rarely separates them) from a population distribution: log-normal
  whose central 95 % is the range in ``ranges`` -- for ``D_w``, ``k`` and ``alpha`` the
  glioma literature ranges the oncology calibration documents (0.01-0.5 mm^2/day,
  0.005-0.1 /day, 0.02-0.06 /Gy); for ``kappa`` (no published range for this model) the
  calibration's start value 0.001 L/(mg h) times e^(+-1.96) (a weak, assumed prior).

Simulation of one patient on one arm (``regimen: {schedule, start_delay_days,
adjuvant_cycles}``, the schedules of :func:`twinflow.models.oncology.forecast.arm_treatments`):
the 3D reaction-diffusion model from the (resected) baseline, in segments of
``assessment_interval_days``, until death or ``horizon_days``.  Endpoints:

* ``pfs``: progression by a RANO-like volumetric rule on the enhancing volume (``u >= 0.8``)
  at the scheduled assessments: at least ``progression_increase`` (0.40: the volumetric
  counterpart of RANO's 25 % increase of the product of diameters) above the nadir and at
  least ``min_increase_ml`` more, or new enhancing disease of ``min_increase_ml`` after a
  nadir of zero; or death, whichever comes first;
* ``os``: death when the enhancing volume reaches ``death_volume_ml`` (default 113 ml, a
  6 cm sphere: the fatal tumour size of Swanson et al.'s glioma simulations), by the day;
* ``enhancing_ml_6m`` and ``t2_ml_6m``: the volumes 182 days after the start.

``grid: coarse`` runs the same model on a grid coarsened by 2 along every axis (maps averaged
over 2x2x2 blocks, tissue where the averaged ``p_wm + p_gm >= 0.5``): the reduced-order option
for large trials, validated against the full grid in ``benchmarks/trials.py``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from twinflow.errors import InputError
from twinflow.models.base import SourceTwin, TrialModel
from twinflow.models.oncology.forecast import ARMS, tumour_volume_ml

PARAMS = ("d_w_mm2_day", "k_per_day", "alpha_per_gy", "kappa_l_per_mg_h")
DEFAULT_RANGES = {"d_w_mm2_day": [0.01, 0.5], "k_per_day": [0.005, 0.1], "alpha_per_gy": [0.02, 0.06],
                  "kappa_l_per_mg_h": [0.001 * math.exp(-1.96), 0.001 * math.exp(1.96)]}
RESECTION_FRACTION = {"biopsy": 0.0, "partial": 0.5, "complete": 1.0}
SCHEDULES = ARMS                   # the twin's treatment arms (forecast.arm_treatments)
SIX_MONTHS_DAYS = 182
START_DATE = "2000-01-03"          # a Monday: the schedule's weekdays; no calendar date reaches the outputs


@lru_cache(maxsize=8)
def _maps(twin_dir: str, grid: str) -> tuple[dict[str, np.ndarray], tuple[float, float, float]]:
    """The source twin's maps (initial density, p_wm, p_gm, tissue) and spacing, on the grid."""
    import nibabel as nib

    if grid == "coarse":
        return coarsen(*_maps(twin_dir, "full"))

    d = Path(twin_dir) / "maps"
    out = {}
    spacing = None
    for k in ("initial_density", "p_wm", "p_gm", "tissue"):
        f = d / f"{k}.nii.gz"
        if not f.is_file():
            raise InputError(f"the oncology trial needs maps/{k}.nii.gz of the source twin", path=str(f))
        img = nib.load(str(f))
        out[k] = np.asarray(img.dataobj, dtype=np.float32)
        spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    out["tissue"] = out["tissue"] > 0.5
    return out, spacing


def coarsen(maps: dict[str, np.ndarray], spacing) -> tuple[dict[str, np.ndarray], tuple[float, float, float]]:
    """Average 2x2x2 blocks (the grid padded to even sizes); tissue where p_wm + p_gm >= 0.5."""
    out = {k: block_mean(maps[k]) for k in ("initial_density", "p_wm", "p_gm")}
    out["tissue"] = (out["p_wm"] + out["p_gm"]) >= 0.5
    return out, tuple(2.0 * s for s in spacing)


def block_mean(a: np.ndarray) -> np.ndarray:
    """Mean over 2x2x2 blocks (the grid padded with zeros to even sizes), float32."""
    a = np.pad(a, [(0, s % 2) for s in a.shape])
    n = [s // 2 for s in a.shape]
    return a.reshape(n[0], 2, n[1], 2, n[2], 2).mean(axis=(1, 3, 5)).astype(np.float32)


@lru_cache(maxsize=8)
def _solver(twin_dir: str, grid: str):
    from twinflow.models.oncology.growth import ReactionDiffusion

    maps, spacing = _maps(twin_dir, grid)
    return ReactionDiffusion(spacing, maps["tissue"], maps["p_wm"], maps["p_gm"])


def resect(u: np.ndarray, fraction: float, threshold: float = 0.8) -> np.ndarray:
    """Remove the cells of the inner ``fraction`` of the enhancing region (by distance from its centroid)."""
    if fraction <= 0:
        return u
    enh = np.argwhere(u >= threshold)
    if not len(enh):
        return u
    c = enh.mean(axis=0)
    order = np.argsort(((enh - c) ** 2).sum(axis=1), kind="stable")
    take = enh[order[: int(round(fraction * len(enh)))]]
    out = u.copy()
    out[tuple(take.T)] = 0.0
    return out


def _lognormal_from_range(lo: float, hi: float) -> tuple[float, float]:
    mu = 0.5 * (math.log(lo) + math.log(hi))
    return mu, (math.log(hi) - math.log(lo)) / (2 * 1.959964)


class OncologyTrial(TrialModel):
    population_choice = (
        "Cohort twins' posteriors plus published parameter ranges: each virtual patient takes an oncology twin of "
        "the cohort (uniformly) with its brain and its tumour at diagnosis, a resection drawn from the configured "
        "mix, the parameters the twin identifies drawn from its posterior with a between-patient spread, and the "
        "parameters it does not identify drawn from population distributions built on published glioma ranges.")
    population_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "resection": {"type": "object", "additionalProperties": False,
                          "properties": {k: {"type": "number", "minimum": 0} for k in RESECTION_FRACTION},
                          "default": {"biopsy": 1.0}},
            "between_patient_log_sd": {"type": "number", "minimum": 0, "default": 0.25},
            "ranges": {"type": "object", "additionalProperties": False,
                       "properties": {p: {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0},
                                          "minItems": 2, "maxItems": 2} for p in PARAMS},
                       "default": {k: list(v) for k, v in DEFAULT_RANGES.items()}},
        },
    }
    simulation_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "horizon_days": {"type": "integer", "minimum": 30, "default": 1095},
            "assessment_interval_days": {"type": "integer", "minimum": 7, "default": 91},
            "progression_increase": {"type": "number", "exclusiveMinimum": 0, "default": 0.40},
            "min_increase_ml": {"type": "number", "minimum": 0, "default": 1.0},
            "death_volume_ml": {"type": "number", "exclusiveMinimum": 0, "default": 113.1},
            "grid": {"enum": ["full", "coarse"], "default": "full"},
            "dt_day": {"type": "number", "exclusiveMinimum": 0, "default": 0.5},
        },
    }
    regimen_schema = {
        "type": "object", "additionalProperties": False, "required": ["schedule"],
        "properties": {"schedule": {"enum": list(SCHEDULES)},
                       "start_delay_days": {"type": "integer", "minimum": 0, "default": 0},
                       "adjuvant_cycles": {"type": "integer", "minimum": 0, "default": 6}},
    }
    endpoints = {
        "pfs": {"kind": "time_to_event", "unit": "days",
                "description": "progression (RANO-like volumetric rule on the enhancing volume at the scheduled "
                               "assessments) or death"},
        "os": {"kind": "time_to_event", "unit": "days",
               "description": "death: enhancing volume reaching the fatal size"},
        "enhancing_ml_6m": {"kind": "continuous", "unit": "ml", "description": "enhancing volume (u >= 0.8) at 182 days"},
        "t2_ml_6m": {"kind": "continuous", "unit": "ml", "description": "FLAIR/T2-visible volume (u >= 0.16) at 182 days"},
    }
    covariates = {
        "source": "source twin (patient id)", "age_years": "age (sheet)", "sex": "sex (sheet)",
        "resection": "biopsy, partial or complete", "enhancing_ml": "enhancing volume at baseline (after resection)",
        "t2_ml": "FLAIR/T2-visible volume at baseline", **{p: f"growth parameter {p}" for p in PARAMS},
    }
    modules = ("twinflow.models.oncology.trial", "twinflow.models.oncology.growth",
               "twinflow.models.oncology.forecast", "twinflow.models.oncology.schedule")

    def assumptions(self, population: Mapping[str, Any], simulation: Mapping[str, Any]) -> list[str]:
        rng = population["ranges"]
        return [
            "baseline: each source twin's first-visit tumour density (before treatment) on its own brain",
            f"resection mix {population['resection']}: complete removes all enhancing cells (u >= 0.8), partial "
            "the inner half of them; the infiltrating margin stays",
            f"identified parameters: the twin's Laplace posterior times exp(N(0, {population['between_patient_log_sd']:g})) "
            "(assumed between-patient spread)",
            "parameters the twin does not identify: log-normal with central 95 % " +
            ", ".join(f"{k} {v[0]:.3g}-{v[1]:.3g}" for k, v in sorted(rng.items())),
            f"progression: enhancing volume >= (1 + {simulation['progression_increase']:g}) x nadir and >= nadir + "
            f"{simulation['min_increase_ml']:g} ml at assessments every {simulation['assessment_interval_days']} days "
            "(no pseudo-progression, no non-enhancing criterion)",
            f"death: enhancing volume >= {simulation['death_volume_ml']:g} ml (6 cm sphere; Swanson's fatal size); "
            f"follow-up {simulation['horizon_days']} days",
            f"grid: {simulation['grid']}" + (" (coarsened 2x per axis; reduced-order option)" if simulation["grid"] == "coarse" else ""),
            "temozolomide: population PK scaled by the source twin's BSA; one kappa for all drug exposure",
        ]

    # ------------------------------------------------------------------ population
    def population(self, sources: list[SourceTwin], options: Mapping[str, Any], n: int, rng: Any) -> list[dict]:
        from twinflow.models.oncology.density import T1_THRESHOLD, T2_THRESHOLD
        from twinflow.physiology.body import bsa_mosteller

        if not sources:
            raise InputError("an oncology trial needs at least one calibrated oncology twin in the cohort", path="config")
        res = options["resection"]
        kinds = [k for k in RESECTION_FRACTION if res.get(k, 0) > 0]
        prob = np.array([res[k] for k in kinds], float)
        prob /= prob.sum()
        prior = {p: _lognormal_from_range(*options["ranges"][p]) for p in PARAMS}
        between_sd = options["between_patient_log_sd"]
        # per source twin, once: what every virtual patient drawn from it shares
        fixed, volumes = {}, {}
        for s in sources:
            maps, spacing = _maps(str(s.twin_dir), "full")
            for kind in kinds:                          # baseline volumes after each resection
                u = resect(maps["initial_density"], RESECTION_FRACTION[kind])
                volumes[s.patient_id, kind] = (tumour_volume_ml(u, spacing, T1_THRESHOLD),
                                               tumour_volume_ml(u, spacing, T2_THRESHOLD))
            prm = s.doc["parameters"]
            posterior = {}
            for p in PARAMS:                            # the parameters the twin identifies
                e = prm.get(p) or {}
                if e.get("estimated") and e.get("identifiable") and e.get("sd"):
                    posterior[p] = (e["value"], math.sqrt((e["sd"] / e["value"]) ** 2 + between_sd ** 2))
            bsa = None
            if s.row.get("height_cm") and s.row.get("weight_kg"):
                bsa = bsa_mosteller(float(s.row["height_cm"]), float(s.row["weight_kg"]))
            fixed[s.patient_id] = (posterior, {
                "bsa_m2": bsa or 1.8,
                "gm_ratio": float((prm.get("gm_ratio") or {}).get("value", 0.1)),
                "ab_ratio_gy": float((prm.get("ab_ratio_gy") or {}).get("value", 10.0))})
        out = []
        for _ in range(n):
            s = sources[int(rng.integers(len(sources)))]
            kind = kinds[int(rng.choice(len(kinds), p=prob))]
            posterior, shared = fixed[s.patient_id]
            par = {}
            for p in PARAMS:
                if p in posterior:
                    value, lsd = posterior[p]
                    par[p] = float(value * math.exp(rng.normal(0.0, lsd)))
                else:
                    mu, sd = prior[p]
                    par[p] = float(math.exp(rng.normal(mu, sd)))
            enh_ml, t2_ml = volumes[s.patient_id, kind]
            cov = {"source": s.patient_id, "age_years": s.row.get("age_years"), "sex": s.row.get("sex"),
                   "resection": kind, "enhancing_ml": enh_ml, "t2_ml": t2_ml, **par}
            out.append({"source": s.patient_id, "covariates": cov,
                        "params": {**par, "resection_fraction": RESECTION_FRACTION[kind], "bsa_m2": shared["bsa_m2"],
                                   "gm_ratio": shared["gm_ratio"], "ab_ratio_gy": shared["ab_ratio_gy"]}})
        return out

    # ------------------------------------------------------------------ simulation
    def simulate_virtual(self, patient: Mapping[str, Any], arm: Mapping[str, Any], options: Mapping[str, Any],
                         sources: Mapping[str, SourceTwin]) -> dict[str, Any]:
        from twinflow.models.oncology.density import T1_THRESHOLD, T2_THRESHOLD
        from twinflow.models.oncology.forecast import arm_treatments
        from twinflow.models.oncology.growth import GrowthParams
        from twinflow.models.oncology.schedule import schedule_from_treatments

        src = sources[patient["source"]]
        par = patient["params"]
        grid = options["grid"]
        full = _maps(str(src.twin_dir), "full")[0]
        u = resect(full["initial_density"], float(par["resection_fraction"]))
        if grid == "coarse":
            u = block_mean(u)
        spacing = _maps(str(src.twin_dir), grid)[1]
        rd = _solver(str(src.twin_dir), grid)
        gp = GrowthParams(d_w_mm2_day=par["d_w_mm2_day"], k_per_day=par["k_per_day"], alpha_per_gy=par["alpha_per_gy"],
                          kappa_l_per_mg_h=par["kappa_l_per_mg_h"], gm_ratio=par["gm_ratio"], ab_ratio_gy=par["ab_ratio_gy"])
        reg = arm["regimen"]
        rows = arm_treatments(reg["schedule"], START_DATE, start_delay_days=int(reg.get("start_delay_days", 0)),
                              adjuvant_cycles=int(reg.get("adjuvant_cycles", 6)))
        sched = schedule_from_treatments(rows, START_DATE, bsa_m2=float(par["bsa_m2"]))
        horizon, step = int(options["horizon_days"]), int(options["assessment_interval_days"])
        death_ml, dt = float(options["death_volume_ml"]), float(options["dt_day"])
        enh = {0: tumour_volume_ml(u, spacing, T1_THRESHOLD)}
        t2 = {0: tumour_volume_ml(u, spacing, T2_THRESHOLD)}
        death = None
        t0 = 0
        while t0 < horizon and death is None:
            seg = min(step, horizon - t0)
            last: list[np.ndarray] = []

            def summary(a: np.ndarray, _last=last) -> tuple[float, float]:
                _last[:] = [a]
                return tumour_volume_ml(a, spacing, T1_THRESHOLD), tumour_volume_ml(a, spacing, T2_THRESHOLD)

            out = rd.simulate(u, gp, float(seg), dt, schedule=sched.shifted(float(t0)),
                              save_days=list(range(1, seg + 1)), transform=summary)
            u = last[0]
            for d in range(1, seg + 1):
                e, v = out[d]
                enh[t0 + d], t2[t0 + d] = e, v
                if death is None and e >= death_ml:
                    death = t0 + d
            t0 += seg
        assess = list(range(step, horizon + 1, step))
        nadir = enh[0]
        prog = None
        for d in assess:
            if death is not None and d >= death:
                break
            v = enh[d]
            if v >= nadir * (1.0 + options["progression_increase"]) and v - nadir >= options["min_increase_ml"]:
                prog = d
                break
            nadir = min(nadir, v)
        pfs_t = min(x for x in (prog, death, horizon) if x is not None)
        six = min(SIX_MONTHS_DAYS, max(enh))            # enh and t2 hold every day from 0 on
        return {"pfs": {"time": float(pfs_t), "event": prog is not None or (death is not None and death <= pfs_t)},
                "os": {"time": float(death if death is not None else horizon), "event": death is not None},
                "enhancing_ml_6m": enh[six] if death is None or death > SIX_MONTHS_DAYS else death_ml,
                "t2_ml_6m": t2[six]}
