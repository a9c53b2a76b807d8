"""Nelson's treatment centre (Nelson 2013, exercise 13, p. 170) as a twinflow hospital model.

The parameters are those published with treat-sim 3.0.0 (Monks et al., the SimPy
implementation of the same model), written here in the twin's own model format so that the
twin's engine can be checked against a model we did not write (benchmarks/hospital.py runs
both).  Times in the model are hours; the published values are minutes.

Patients arrive between 06:00 and 24:00 by a non-stationary Poisson process (18 hourly rates
per hour, cycling), sign in and are triaged (one triage bay, exponential 3 min).  12 % are
trauma: stabilisation in one of two trauma bays (exponential 90 min), then treatment in the
trauma cubicle (lognormal mean 30, variance 4).  The others register (one clerk, lognormal
mean 5, variance 2), are examined (three rooms, normal mean 16, variance 3, at least 0.5)
and 60 % are treated in the non-trauma cubicle (lognormal mean 13.3, variance 2).  The
results collection period is 19 hours (1140 min) from 06:00; patients still waiting at the
end are not counted.
"""

from __future__ import annotations

import math

from twinflow.hospital.sim import END, START

#: arrivals per hour, 06:00-07:00 ... 23:00-24:00 (treat-sim's ed_arrivals.csv)
ARRIVAL_RATES_PER_H = [2.36666666666667, 2.8, 8.83333333333333, 10.4333333333333, 14.8, 26.2666666666667,
                       31.4, 18.0666666666667, 16.4666666666667, 12.0333333333333, 11.6, 28.8666666666667,
                       18.0333333333333, 11.5, 5.3, 4.06666666666667, 2.2, 2.1]
RUN_LENGTH_MIN = 60 * 19

#: activity -> the treat-sim result it corresponds to (mean waiting time, minutes)
TREAT_SIM_WAITS = {
    "triage": "01a_triage_wait",
    "registration": "02a_registration_wait",
    "examination": "03a_examination_wait",
    "treatment_non_trauma": "04a_treatment_wait(non_trauma)",
    "stabilisation": "06a_trauma_wait",
    "treatment_trauma": "07a_treatment_wait(trauma)",
}


def _min(x: float) -> float:
    return x / 60.0


def _lognormal(mean_min: float, var_min2: float) -> dict:
    return {"family": "lognormal", "mean": _min(mean_min), "sd": _min(math.sqrt(var_min2))}


def model() -> dict:
    """The treatment centre in the twin's model format (hours)."""
    acts = {
        "triage": {"resource": "triage_bay", "service": {"family": "exponential", "mean": _min(3.0)}},
        "registration": {"resource": "registration_clerk", "service": _lognormal(5.0, 2.0)},
        "examination": {"resource": "examination_room",
                        "service": {"family": "normal", "mean": _min(16.0), "sd": _min(math.sqrt(3.0)),
                                    "min": _min(0.5)}},
        "treatment_non_trauma": {"resource": "cubicle_non_trauma", "service": _lognormal(13.3, 2.0)},
        "stabilisation": {"resource": "trauma_bay", "service": {"family": "exponential", "mean": _min(90.0)}},
        "treatment_trauma": {"resource": "cubicle_trauma", "service": _lognormal(30.0, 4.0)},
    }
    return {
        "format": "twinflow.hospital.model",
        "arrivals": {"period_h": len(ARRIVAL_RATES_PER_H), "rate_per_h": list(ARRIVAL_RATES_PER_H),
                     "trend_per_week": 0.0},
        "classes": {"names": ["non_trauma", "trauma"], "p": [0.88, 0.12], "priority": {}},
        "activities": acts,
        "delays": {},
        "routing": {
            "non_trauma": {START: {"triage": 1.0}, "triage": {"registration": 1.0},
                           "registration": {"examination": 1.0},
                           "examination": {"treatment_non_trauma": 0.6, END: 0.4},
                           "treatment_non_trauma": {END: 1.0}},
            "trauma": {START: {"triage": 1.0}, "triage": {"stabilisation": 1.0},
                       "stabilisation": {"treatment_trauma": 1.0}, "treatment_trauma": {END: 1.0}},
        },
        "resources": {"triage_bay": {"capacity": 1}, "registration_clerk": {"capacity": 1},
                      "examination_room": {"capacity": 3}, "trauma_bay": {"capacity": 2},
                      "cubicle_non_trauma": {"capacity": 1}, "cubicle_trauma": {"capacity": 1}},
        "default_area": "centre",
        "kpi": {"key_events": {}, "targets": {}},
        "run": run(),
    }


def run() -> dict:
    """Run settings of one replication: 19 hours from 06:00 (the first profile hour)."""
    h = RUN_LENGTH_MIN / 60.0
    return {"horizon_h": h, "phase_h": 0.0, "trend_weeks0": 0.0, "window_h": [0.0, h]}
