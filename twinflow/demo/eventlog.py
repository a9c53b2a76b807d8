"""The demo site's event log: a small emergency department generated from a known model.

Six weeks of a made-up ED (:data:`TRUTH`), simulated with the twin's own engine
(:func:`twinflow.hospital.sim.simulate`) and written as a CSV event log with the XES column
names: ``case:concept:name`` (``DEMO-00001`` ...), ``concept:name``, ``time:timestamp``,
``lifecycle:transition`` (``start``/``complete``; the instantaneous Admission and Discharge
events have a ``complete`` only), ``org:resource`` (the resource pool) and ``case:acuity``
(``minor`` / ``major``).  The log starts on Monday 2024-01-01 00:00 and is cut at the end of
week 6, so cases still in the department then have unfinished activities, as in a real
extract.

Known values the fit must recover (tests/test_hospital.py): arrival rates by hour of week
(hour-of-day profile x day-of-week factor x ``exp(0.03 / week)``), the acuity mix, the
routing probabilities, the mean service times and the resource capacities.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd

from twinflow.io.atomic import write_text

START_DATE = dt.datetime(2024, 1, 1)  # a Monday
WEEKS = 6
SEED = 20240101

#: arrivals per hour by hour of day (a weekday of average demand)
HOUR_OF_DAY_RATE = [1.6, 1.3, 1.1, 1.0, 1.0, 1.2, 1.8, 2.8, 4.2, 5.4, 6.0, 6.2,
                    6.0, 5.8, 5.6, 5.4, 5.3, 5.2, 5.0, 4.6, 4.0, 3.3, 2.6, 2.0]
#: day-of-week factor, Monday first
DAY_FACTOR = [1.15, 1.05, 1.0, 1.0, 1.0, 0.9, 0.9]
TREND_PER_WEEK = 0.03


def _min(x: float) -> float:
    return x / 60.0


def _lognormal(mean_min: float, sd_min: float) -> dict:
    return {"family": "lognormal", "mean": _min(mean_min), "sd": _min(sd_min)}


def truth_model() -> dict:
    """The known model the demo log is generated from (hours)."""
    rates = [HOUR_OF_DAY_RATE[h % 24] * DAY_FACTOR[h // 24] for h in range(168)]
    return {
        "format": "twinflow.hospital.model",
        "arrivals": {"period_h": 168, "rate_per_h": rates, "trend_per_week": TREND_PER_WEEK},
        "classes": {"names": ["major", "minor"], "p": [0.35, 0.65], "priority": {"major": 0, "minor": 1}},
        "activities": {
            "Registration": {"resource": "reception", "service": _lognormal(4.0, 2.0)},
            "Triage": {"resource": "triage_nurse", "service": _lognormal(10.0, 4.0)},
            "Assessment": {"resource": "doctor", "service": _lognormal(25.0, 10.0)},
            "Blood tests": {"resource": None, "service": _lognormal(45.0, 20.0)},
            "Treatment": {"resource": "cubicle", "service": _lognormal(60.0, 30.0)},
            "Admission": {"resource": None, "service": None, "delay": _lognormal(120.0, 90.0)},
            "Discharge": {"resource": None, "service": None, "delay": {"family": "exponential", "mean": _min(10.0)}},
        },
        "delays": {},
        "routing": {
            "minor": {"__start__": {"Registration": 1.0}, "Registration": {"Triage": 1.0},
                      "Triage": {"Assessment": 1.0}, "Assessment": {"Treatment": 0.3, "Discharge": 0.7},
                      "Treatment": {"Discharge": 1.0}, "Discharge": {"__end__": 1.0}},
            "major": {"__start__": {"Registration": 1.0}, "Registration": {"Triage": 1.0},
                      "Triage": {"Assessment": 1.0}, "Assessment": {"Blood tests": 0.7, "Treatment": 0.3},
                      "Blood tests": {"Treatment": 0.8, "Admission": 0.2},
                      "Treatment": {"Admission": 0.5, "Discharge": 0.5},
                      "Admission": {"__end__": 1.0}, "Discharge": {"__end__": 1.0}},
        },
        "resources": {"reception": {"capacity": 1}, "triage_nurse": {"capacity": 2}, "doctor": {"capacity": 3},
                      "cubicle": {"capacity": 4}},
        "areas": {},
        "default_area": "ED",
    }


#: the lab is not a queueing resource of the model, but the log names who did it
POOL_NAME = {"Blood tests": "lab", "Admission": "bed_manager", "Discharge": "ed_staff"}


def generate_frame(weeks: int = WEEKS, seed: int = SEED) -> pd.DataFrame:
    """The demo log as a frame, one event per row, ordered by time."""
    from twinflow.hospital.sim import simulate

    spec = truth_model()
    horizon = weeks * 168.0
    tr = simulate(spec, {"horizon_h": horizon, "phase_h": 0.0, "trend_weeks0": 0.0}, seed, 0)
    acts = tr.activities
    rows = []
    t0 = np.datetime64(START_DATE, "us")
    for k in range(tr.v_case.size):
        a = acts[tr.v_act[k]]
        act = spec["activities"][a]
        case = f"DEMO-{tr.v_case[k] + 1:05d}"
        acuity = tr.classes[tr.case_class[tr.v_case[k]]]
        pool = act.get("resource") or POOL_NAME[a]
        instant = act.get("service") is None
        if not instant:
            rows.append((case, a, tr.v_start[k], "start", pool, acuity))
        if not np.isnan(tr.v_end[k]):
            rows.append((case, a, tr.v_end[k], "complete", pool, acuity))
    df = pd.DataFrame(rows, columns=["case:concept:name", "concept:name", "t_h", "lifecycle:transition",
                                     "org:resource", "case:acuity"])
    df = df.sort_values(["t_h", "case:concept:name"], kind="stable").reset_index(drop=True)
    ts = t0 + np.round(df["t_h"].to_numpy() * 3600e6).astype("timedelta64[us]")
    df.insert(2, "time:timestamp", pd.Series(ts).dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3])
    return df.drop(columns=["t_h"])


def write(path: str | Path, weeks: int = WEEKS, seed: int = SEED) -> Path:
    """Write the demo log (CSV) to ``path``; deterministic bytes."""
    buf = io.StringIO()
    generate_frame(weeks, seed).to_csv(buf, index=False, lineterminator="\n")
    write_text(path, buf.getvalue())
    return Path(path)
