"""Pick the most recent lab value before a date, with a documented default when none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

#: Defaults used when an analyte has no plausible value before the date (value, unit, why).
DEFAULTS: dict[str, tuple[float, str, str]] = {
    "creatinine": (80.0, "umol/L", "typical adult serum creatinine (normal renal function)"),
    "bilirubin_total": (10.0, "umol/L", "typical adult total bilirubin (normal)"),
    "ast": (25.0, "U/L", "typical adult AST (normal)"),
    "albumin": (40.0, "g/L", "typical adult albumin (normal)"),
    "neutrophils": (4.0, "10^9/L", "typical adult neutrophil count (normal)"),
    "platelets": (250.0, "10^9/L", "typical adult platelet count (normal)"),
    "body_height": (170.0, "cm", "adult reference height"),
    "body_weight": (70.0, "kg", "adult reference weight"),
}


def load_labs(labs: pd.DataFrame | str | Path | None) -> pd.DataFrame:
    """The labs table of :func:`twinflow.io.labs.ingest_labs` (DataFrame or TSV path)."""
    cols = ["date", "analyte", "value", "unit", "plausible"]
    if labs is None:
        return pd.DataFrame({c: [] for c in cols})
    if isinstance(labs, pd.DataFrame):
        return labs
    df = pd.read_csv(labs, sep="\t", dtype={"date": str, "analyte": str, "loinc": str, "unit": str,
                                             "flag": str}, keep_default_na=False,
                     na_values={"value": [""], "original_value": [""]})
    if "plausible" in df.columns and df["plausible"].dtype != bool:
        df["plausible"] = df["plausible"].astype(str).str.lower().isin(["true", "1"])
    return df


def latest_before(labs: pd.DataFrame, analyte: str, date: str, *, inclusive: bool = True) -> dict[str, Any] | None:
    """Most recent plausible value of ``analyte`` on or before ``date`` (ISO text), or None.

    Lab dates may be dates or time stamps; the comparison is on the first 10 characters
    (the calendar date), so a value measured on the treatment day counts when ``inclusive``.
    """
    if len(labs) == 0:
        return None
    sel = labs[(labs["analyte"] == analyte)]
    if "plausible" in sel.columns:
        sel = sel[sel["plausible"].astype(bool)]
    day = sel["date"].astype(str).str[:10]
    cut = str(date)[:10]
    sel = sel[(day <= cut) if inclusive else (day < cut)]
    if len(sel) == 0:
        return None
    sel = sel.assign(_d=sel["date"].astype(str)).sort_values("_d", kind="mergesort")
    row = sel.iloc[-1]
    return {"analyte": analyte, "value": float(row["value"]), "unit": str(row["unit"]),
            "date": str(row["date"]), "source": "labs"}


def value_or_default(labs: pd.DataFrame, analyte: str, date: str, assumptions: list[str]) -> dict[str, Any]:
    """:func:`latest_before`, else the :data:`DEFAULTS` entry (and an assumption is recorded)."""
    hit = latest_before(labs, analyte, date)
    if hit is not None:
        return hit
    value, unit, why = DEFAULTS[analyte]
    assumptions.append(f"{analyte}: no value on or before {str(date)[:10]}; default {value:g} {unit} ({why})")
    return {"analyte": analyte, "value": value, "unit": unit, "date": None, "source": "default"}
