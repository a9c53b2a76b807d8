"""A trial model with analytic endpoints and known effects, for the trial engine's tests.

Each virtual patient carries its own random numbers (drawn in ``population``), so that its
outcome on either arm is a fixed function of them -- potential outcomes -- and the arms differ
by exactly the configured effect: a hazard ratio ``hr`` on an exponential time to event
(administrative censoring at ``censor_days``), a shift ``delta`` of a normal endpoint (sd 1),
and an odds ratio ``odds_ratio`` on a binary endpoint of baseline probability ``p0``."""

from __future__ import annotations

import math
from typing import Any, Mapping

from twinflow.models.base import SourceTwin, TrialModel


class AnalyticTrial(TrialModel):
    population_choice = "analytic test population"
    population_schema = {"type": "object", "additionalProperties": False,
                         "properties": {"p_group_b": {"type": "number", "default": 0.3}}}
    simulation_schema = {"type": "object", "additionalProperties": False, "properties": {
        "hr": {"type": "number", "default": 1.0}, "delta": {"type": "number", "default": 0.0},
        "odds_ratio": {"type": "number", "default": 1.0}, "p0": {"type": "number", "default": 0.3},
        "rate_per_day": {"type": "number", "default": 0.01}, "censor_days": {"type": "number", "default": 150.0}}}
    regimen_schema = {"type": "object", "additionalProperties": False,
                      "properties": {"treated": {"type": "boolean", "default": False}}}
    endpoints = {"tte": {"kind": "time_to_event", "unit": "days"}, "y": {"kind": "continuous", "unit": "1"},
                 "response": {"kind": "binary", "unit": ""}}
    covariates = {"group": "A or B", "age_years": "age", "source": "source"}

    def population(self, sources: list[SourceTwin], options: Mapping[str, Any], n: int, rng: Any) -> list[dict]:
        out = []
        for _ in range(n):
            g = "B" if rng.random() < options["p_group_b"] else "A"
            out.append({"source": None,
                        "covariates": {"group": g, "age_years": float(round(rng.uniform(20, 90))), "source": ""},
                        "params": {"u_tte": float(rng.random()), "eps": float(rng.normal()), "u_bin": float(rng.random())}})
        return out

    def simulate_virtual(self, patient, arm, options, sources) -> dict[str, Any]:
        p = patient["params"]
        treated = bool(arm["regimen"].get("treated"))
        rate = options["rate_per_day"] * (options["hr"] if treated else 1.0)
        t = -math.log(p["u_tte"]) / rate
        odds = options["p0"] / (1 - options["p0"]) * (options["odds_ratio"] if treated else 1.0)
        return {"tte": {"time": min(t, options["censor_days"]), "event": t <= options["censor_days"]},
                "y": p["eps"] + (options["delta"] if treated else 0.0),
                "response": p["u_bin"] < odds / (1 + odds)}


class Registry:
    """A stand-in for twinflow.models.registry that knows the analytic model only."""

    class _Model:
        version = "0"

        def trial(self):
            return AnalyticTrial()

    @staticmethod
    def names():
        return ["analytic"]

    @classmethod
    def get(cls, name):
        return cls._Model()


def trial_config(n_per_arm: int = 50, **over) -> dict:
    from twinflow.trials.config import check_trials

    cfg = {"model": "analytic", "arms": [{"name": "control"}, {"name": "treated", "regimen": {"treated": True}}],
           "n_per_arm": n_per_arm, "chunk_size": 40, "endpoints": ["tte", "y", "response"]}
    cfg.update(over)
    return check_trials({"t": cfg}, Registry)["t"]
