"""The cardiac twin's part of in-silico trials: metoprolol regimens in virtual patients drawn
from the cohort's calibrated cardiac twins (:class:`CardiacTrial`).

Population (the documented choice: **cohort twins' posteriors + published covariate
distributions**).  A virtual patient

* takes a source twin, uniformly among the cohort's cardiac twins;
* takes that twin's calibrated circulation with its parameter uncertainty: the estimated
  parameters (``lv_emax``, ``v_stressed``, ``r_sys``, ``c_sa`` with pressures; fewer without)
  drawn jointly log-normal from the twin's Laplace posterior (relative SDs and correlation in
  ``twin.json``), the others at their values;
* gets between-patient variability the twins cannot give on their own: a resting heart rate
  ``Normal(twin's HR, hr_sd_bpm)`` (default 10/min, a typical SD of resting heart rate in
  adult cohorts; an assumption) truncated to ``hr_range_bpm``, and a CYP2D6 phenotype drawn
  from ``phenotype_frequencies`` (default: the midpoints, normalised, of the ranges in the
  NCBI Medical Genetics Summaries' table of likely CYP2D6 phenotypes: UM 1-2 %, NM 77-92 %,
  IM 2-11 %, PM 5-10 %; activity score 1.0 counted as NM as in that table).  With
  ``phenotype: twin`` the source twin's own phenotype is used instead;
* optionally ``variability`` (log-SD per circulation parameter) widens the population beyond
  the twins' posteriors (default none).

Simulation of one patient on one arm (``regimen: {dose_mg, interval_h}``): metoprolol PK by
the patient's phenotype to steady state (``days``), effect-site concentration at the
``timepoint`` (trough or peak), Emax effects on heart rate and contractility, and the
circulation's periodic steady state (:mod:`twinflow.models.cardiac.arms`).  The patient's
baseline is the same circulation without drug, so changes from baseline are endpoints too.
A fresh solver per patient (no warm start across patients) keeps every result a function of
the patient alone.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from twinflow.errors import InputError
from twinflow.models.base import SourceTwin, TrialModel

PHENOTYPES = ("Normal Metabolizer", "Intermediate Metabolizer", "Poor Metabolizer", "Ultrarapid Metabolizer")
#: midpoints of UM 1-2 %, NM 77-92 %, IM 2-11 %, PM 5-10 % (NCBI Medical Genetics Summaries), normalised
DEFAULT_FREQUENCIES = {"Normal Metabolizer": 84.5, "Intermediate Metabolizer": 6.5, "Poor Metabolizer": 7.5,
                       "Ultrarapid Metabolizer": 1.5}
MEASURES = ("hr_bpm", "sbp_mmhg", "dbp_mmhg", "map_mmhg", "ef_pct", "co_l_min", "sv_ml", "edv_ml", "esv_ml")
UNITS = {"hr_bpm": "/min", "sbp_mmhg": "mmHg", "dbp_mmhg": "mmHg", "map_mmhg": "mmHg", "ef_pct": "%",
         "co_l_min": "L/min", "sv_ml": "ml", "edv_ml": "ml", "esv_ml": "ml"}
BRADYCARDIA_BPM = 60.0


def _endpoints() -> dict[str, dict[str, str]]:
    out = {}
    for m in MEASURES:
        out[m] = {"kind": "continuous", "unit": UNITS[m], "description": f"{m} at the steady-state time point on the arm"}
        out[f"{m}_change"] = {"kind": "continuous", "unit": UNITS[m],
                              "description": f"{m} on the arm minus the patient's own baseline (no drug)"}
    out["bradycardia"] = {"kind": "binary", "unit": "",
                          "description": f"heart rate below {BRADYCARDIA_BPM:g}/min at the steady-state time point"}
    out["ce_ng_ml"] = {"kind": "continuous", "unit": "ng/mL", "description": "metoprolol effect-site concentration"}
    return out


class CardiacTrial(TrialModel):
    population_choice = (
        "Cohort twins' posteriors plus published covariate distributions: each virtual patient takes a cardiac twin "
        "of the cohort (uniformly) with its calibrated circulation drawn from the twin's Laplace posterior, a resting "
        "heart rate drawn around the twin's, and a CYP2D6 phenotype drawn from published population frequencies.")
    population_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "phenotype": {"enum": ["population", "twin"], "default": "population"},
            "phenotype_frequencies": {"type": "object", "additionalProperties": False,
                                      "properties": {p: {"type": "number", "minimum": 0} for p in PHENOTYPES},
                                      "default": dict(DEFAULT_FREQUENCIES)},
            "posterior": {"type": "boolean", "default": True},
            "hr_sd_bpm": {"type": "number", "minimum": 0, "default": 10.0},
            "hr_range_bpm": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                             "default": [45.0, 120.0]},
            "variability": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}, "default": {}},
        },
    }
    simulation_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {"timepoint": {"enum": ["trough", "peak"], "default": "trough"},
                       "days": {"type": "number", "minimum": 2, "default": 7.0}},
    }
    regimen_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {"dose_mg": {"type": "number", "minimum": 0, "default": 0.0},
                       "interval_h": {"type": "number", "exclusiveMinimum": 0, "default": 12.0}},
    }
    endpoints = _endpoints()
    covariates = {
        "source": "source twin (patient id)", "age_years": "age (sheet)", "sex": "sex (sheet)",
        "cyp2d6_phenotype": "CYP2D6 phenotype of the virtual patient",
        "hr_baseline_bpm": "resting heart rate without drug", "ef_percent": "LVEF of the source twin (cine MRI)",
        "edv_ml": "EDV of the source twin (cine MRI)",
    }
    modules = ("twinflow.models.cardiac.trial", "twinflow.models.cardiac.arms")

    def assumptions(self, population: Mapping[str, Any], simulation: Mapping[str, Any]) -> list[str]:
        from twinflow.models.cardiac.drugs import DEFAULT_PD

        freq = population["phenotype_frequencies"]
        tot = sum(freq.values()) or 1.0
        return [
            "circulation: the source twin's calibrated parameters, estimated ones drawn from its Laplace posterior"
            if population["posterior"] else "circulation: the source twin's calibrated parameters (no posterior draw)",
            f"resting heart rate: Normal(twin's, {population['hr_sd_bpm']:g}/min) truncated to "
            f"{population['hr_range_bpm'][0]:g}-{population['hr_range_bpm'][1]:g}/min (assumed spread)",
            ("CYP2D6 phenotype: the source twin's" if population["phenotype"] == "twin" else
             "CYP2D6 phenotype frequencies: " + ", ".join(f"{k} {100 * v / tot:.1f} %" for k, v in freq.items())),
            f"metoprolol tartrate IR, steady state after {simulation['days']:g} days, effect at the {simulation['timepoint']}; "
            f"Emax PD EC50 {DEFAULT_PD.ec50_mg_l * 1000:g} ng/mL, Imax HR {DEFAULT_PD.imax_hr:g}, inotropy "
            f"{DEFAULT_PD.imax_inotropy:g} (the cardiac twin's assumed PD; docs/cardiac-model.md); no baroreflex",
        ] + [f"between-patient log-SD {v:g} on {k}" for k, v in sorted(population["variability"].items())]

    # ------------------------------------------------------------------ population
    @staticmethod
    def _posterior(doc: dict) -> tuple[dict[str, float], list[str], np.ndarray]:
        params = {k: float(v["value"]) for k, v in doc["parameters"].items()}
        cal = doc["model_results"]["calibration"]
        names = [n for n in cal.get("estimated", []) if (doc["parameters"].get(n) or {}).get("sd")]
        sd = np.array([doc["parameters"][n]["sd"] / doc["parameters"][n]["value"] for n in names])
        corr = np.eye(len(names))
        allnames = list(cal.get("estimated", []))
        c = cal.get("correlation")
        if c and len(c) == len(allnames):
            idx = [allnames.index(n) for n in names]
            corr = np.asarray(c, float)[np.ix_(idx, idx)]
        return params, names, np.outer(sd, sd) * corr

    def population(self, sources: list[SourceTwin], options: Mapping[str, Any], n: int, rng: Any) -> list[dict]:
        if not sources:
            raise InputError("a cardiac trial needs at least one calibrated cardiac twin in the cohort", path="config")
        from twinflow.pgx.record import gene_call

        post = [self._posterior(s.doc) for s in sources]
        # per source twin: its CYP2D6 phenotype (as called from its VCF) and its LV function
        twin_pheno = [(gene_call(s.doc.get("pgx"), "CYP2D6") or {}).get("phenotype") for s in sources]
        function = [s.doc["model_results"].get("cardiac_function") or {} for s in sources]
        freq = options["phenotype_frequencies"]
        names = [p for p in PHENOTYPES if freq.get(p, 0) > 0]
        prob = np.array([freq[p] for p in names], float)
        prob /= prob.sum()
        lo, hi = options["hr_range_bpm"]
        out = []
        for _ in range(n):
            i = int(rng.integers(len(sources)))
            s = sources[i]
            params, est, cov = post[i]
            p = dict(params)
            if options["posterior"] and est:
                z = rng.multivariate_normal(np.zeros(len(est)), cov, method="cholesky")
                for name, dz in zip(est, z):
                    p[name] = params[name] * math.exp(float(dz))
            for name, lsd in sorted(options["variability"].items()):
                if name in p:
                    p[name] *= math.exp(float(rng.normal(0.0, lsd)))
            hr = float(params["hr_bpm"] + rng.normal(0.0, options["hr_sd_bpm"]))
            p["hr_bpm"] = min(max(hr, lo), hi)
            pheno = twin_pheno[i] if options["phenotype"] == "twin" else names[int(rng.choice(len(names), p=prob))]
            cf = function[i]
            cov_ = {"source": s.patient_id, "age_years": s.row.get("age_years"), "sex": s.row.get("sex"),
                    "cyp2d6_phenotype": pheno or "Indeterminate", "hr_baseline_bpm": p["hr_bpm"],
                    "ef_percent": cf.get("ef_percent"), "edv_ml": cf.get("edv_ml")}
            out.append({"source": s.patient_id, "covariates": cov_,
                        "params": {**{f"circ.{k}": v for k, v in sorted(p.items())}, "cyp2d6_phenotype": pheno}})
        return out

    # ------------------------------------------------------------------ simulation
    def simulate_virtual(self, patient: Mapping[str, Any], arm: Mapping[str, Any], options: Mapping[str, Any],
                         sources: Mapping[str, SourceTwin]) -> dict[str, Any]:
        from twinflow.models.cardiac.arms import apply_effect
        from twinflow.models.cardiac.circulation import DEFAULT_PARAMS, Circulation, summarize
        from twinflow.models.cardiac.drugs import DEFAULT_PD, Regimen, steady_state_exposure

        par = patient["params"]
        circ = DEFAULT_PARAMS.with_(**{k[5:]: float(v) for k, v in par.items() if k.startswith("circ.")})
        reg = arm.get("regimen") or {}
        exp = steady_state_exposure(Regimen(float(reg.get("dose_mg", 0.0)), float(reg.get("interval_h", 12.0))),
                                    par.get("cyp2d6_phenotype"), days=float(options["days"]), n_grid=121)
        ce = exp["ce_trough_mg_l"] if options["timepoint"] == "trough" else exp["ce_peak_mg_l"]
        solver = Circulation()
        base = summarize(solver.steady_state(circ))
        on = summarize(solver.steady_state(apply_effect(circ, ce, DEFAULT_PD))) if ce > 0 else base
        out: dict[str, Any] = {}
        for m in MEASURES:
            out[m] = on[m]
            out[f"{m}_change"] = on[m] - base[m]
        out["bradycardia"] = on["hr_bpm"] < BRADYCARDIA_BPM
        out["ce_ng_ml"] = ce * 1000.0
        return out
