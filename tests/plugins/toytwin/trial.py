"""The toy twin's part of in-silico trials (tests/test_trials_workflow.py): a virtual patient
is a source twin's lesion with a growth rate drawn from the twin's estimate and its standard
error; an arm removes ``kill_fraction`` of the lesion at day 0."""

from __future__ import annotations

import math
from typing import Any, Mapping

from twinflow.models.base import SourceTwin, TrialModel


class ToyTrial(TrialModel):
    population_choice = "each toy twin's lesion with its growth rate drawn from the twin's estimate and standard error"
    population_schema = {"type": "object", "additionalProperties": False,
                         "properties": {"spread": {"type": "number", "minimum": 0, "default": 0.2}}}
    simulation_schema = {"type": "object", "additionalProperties": False,
                         "properties": {"horizon_days": {"type": "number", "default": 120}}}
    regimen_schema = {"type": "object", "additionalProperties": False,
                      "properties": {"kill_fraction": {"type": "number", "minimum": 0, "maximum": 1, "default": 0}}}
    endpoints = {"volume_ml_end": {"kind": "continuous", "unit": "ml"},
                 "doubling": {"kind": "time_to_event", "unit": "days"}}
    covariates = {"source": "source twin", "age_years": "age", "r_per_day": "growth rate"}
    modules = ("toytwin.trial",)

    def population(self, sources: list[SourceTwin], options: Mapping[str, Any], n: int, rng: Any) -> list[dict]:
        out = []
        for _ in range(n):
            s = sources[int(rng.integers(len(sources)))]
            p = s.doc["parameters"]["r_per_day"]
            r = p["value"] * math.exp(rng.normal(0.0, options["spread"])) + rng.normal(0.0, p["sd"])
            v0 = list(s.doc["model_results"]["volumes_ml"].values())[-1]
            out.append({"source": s.patient_id, "covariates": {"source": s.patient_id, "age_years": s.row.get("age_years"),
                                                                "r_per_day": r},
                        "params": {"r_per_day": r, "v0_ml": v0}})
        return out

    def simulate_virtual(self, patient, arm, options, sources) -> dict[str, Any]:
        p = patient["params"]
        f = arm["regimen"]["kill_fraction"]
        h = options["horizon_days"]
        v = p["v0_ml"] * (1 - f) * math.exp(p["r_per_day"] * h)
        t2 = math.log(2.0 / max(1 - f, 1e-9)) / p["r_per_day"] if p["r_per_day"] > 0 else math.inf
        return {"volume_ml_end": v, "doubling": {"time": min(t2, h), "event": t2 <= h}}
