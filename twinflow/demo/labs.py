"""Deterministic demo labs files (long CSV or Synthea observations.csv layout).

Values are given in each analyte's canonical unit (see :data:`twinflow.io.labs.ANALYTES`).
In ``units="mixed"`` mode some analytes are written in conventional US units
(:data:`CONVENTIONAL_UNITS`), converted with the same pint machinery the reader uses, so
that :func:`twinflow.io.labs.read_labs` gives back the canonical values.  Numbers are
written with :data:`SIGNIFICANT_DIGITS` significant digits, so a round trip reproduces a
canonical value to a relative error below 5e-10 (well within 6 decimals for clinical
magnitudes).
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from pathlib import Path
from typing import Sequence

from twinflow.io.atomic import write_text
from twinflow.io.labs import ANALYTES, SYNTHEA_COLUMNS, convert_value

__all__ = ["CONVENTIONAL_UNITS", "SIGNIFICANT_DIGITS", "write_demo_labs"]

#: Units written in ``mixed`` mode (UCUM, as in US exports and Synthea).
CONVENTIONAL_UNITS: dict[str, str] = {
    "creatinine": "mg/dL",
    "bilirubin_total": "mg/dL",
    "albumin": "g/dL",
    "haemoglobin": "g/dL",
    "platelets": "10*3/uL",
    "leukocytes": "10*3/uL",
    "neutrophils": "10*3/uL",
    "glucose": "mg/dL",
    "urea_nitrogen": "mg/dL",
    "systolic_bp": "mm[Hg]",
    "diastolic_bp": "mm[Hg]",
    "heart_rate": "/min",
    "egfr": "mL/min/{1.73_m2}",
    "body_height": "[in_i]",
    "body_weight": "[lb_av]",
}

SIGNIFICANT_DIGITS = 10

_VITALS = {"systolic_bp", "diastolic_bp", "heart_rate", "respiratory_rate", "oxygen_saturation",
           "body_height", "body_weight", "bmi"}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def write_demo_labs(
    path: str | Path,
    values: Sequence[tuple[str, str, float]],
    *,
    layout: str = "long",
    units: str = "mixed",
    seed: int = 0,
) -> None:
    """Write ``values`` = [(ISO date, analyte key, value in canonical unit), ...] as CSV.

    ``layout``: ``"long"`` (date, code, value, unit) or ``"synthea"`` (observations.csv with
    CATEGORY; one synthetic PATIENT uuid and one ENCOUNTER uuid per date, drawn from
    ``seed``; a date without time is written as midnight UTC).  ``units``: ``"mixed"`` or
    ``"canonical"``.  Rows keep the given order; the first LOINC code of each analyte is
    used.  The output is byte-identical for identical arguments.
    """
    if layout not in ("long", "synthea"):
        raise ValueError(f"layout must be 'long' or 'synthea', not {layout!r}")
    if units not in ("mixed", "canonical"):
        raise ValueError(f"units must be 'mixed' or 'canonical', not {units!r}")
    rng = random.Random(seed)
    patient_id = _uuid(rng)
    encounters: dict[str, str] = {}

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if layout == "long":
        w.writerow(["date", "code", "value", "unit"])
    else:
        w.writerow(["DATE", "PATIENT", "ENCOUNTER", "CATEGORY", *SYNTHEA_COLUMNS[3:]])
    for date, key, value in values:
        if key not in ANALYTES:
            raise ValueError(f"unknown analyte {key!r}; known: {', '.join(sorted(ANALYTES))}")
        a = ANALYTES[key]
        unit = CONVENTIONAL_UNITS.get(key, a.unit) if units == "mixed" else a.unit
        v = convert_value(value, a.unit, unit, key)
        text = f"{v:.{SIGNIFICANT_DIGITS}g}"
        if layout == "long":
            w.writerow([date, a.codes[0], text, unit])
        else:
            stamp = date if "T" in date else f"{date}T00:00:00Z"
            if date not in encounters:
                encounters[date] = _uuid(rng)
            category = "vital-signs" if key in _VITALS else "laboratory"
            w.writerow([stamp, patient_id, encounters[date], category, a.codes[0],
                        a.description, text, unit, "numeric"])
    write_text(path, buf.getvalue())
