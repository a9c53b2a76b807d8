"""Visit measurements from the ingested labs table (:mod:`twinflow.io.labs` columns).

* **MAP** by the FMF protocol (Poon et al., Fetal Diagn Ther 2012: automated device, both arms
  at the same time, two sets of readings one minute apart): each reading's MAP is
  ``DBP + (SBP - DBP) / 3``, a systolic and a diastolic row being paired by their time stamp and
  ``body_site``; the visit MAP is the mean over readings.  A mean blood pressure row (LOINC
  8478-0) is used when there are no pairs.  Fewer than the four protocol readings, or one arm
  only, is recorded as a note (the MAP is still used).
* **Biomarkers** (PlGF, sFlt-1, their ratio, PAPP-A) with the analyser that measured them.

Lab rows are matched to a visit when taken within :data:`WINDOW_DAYS` of it (the nearest date
wins; the blood sample's own date sets its gestational age).  Rows flagged implausible are
ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

WINDOW_DAYS = 7


def _day(s: str) -> dt.date:
    return dt.date.fromisoformat(str(s)[:10])


def _near(labs: pd.DataFrame, analyte: str, date: str) -> pd.DataFrame:
    if labs is None or len(labs) == 0 or "analyte" not in labs.columns:
        return labs.iloc[0:0] if labs is not None else pd.DataFrame()
    sel = labs[labs["analyte"] == analyte]
    if "flag" in sel.columns:
        sel = sel[~sel["flag"].fillna("").astype(str).str.startswith("implausible")]
    if not len(sel):
        return sel
    d0 = _day(date)
    gap = sel["date"].map(lambda s: abs((_day(s) - d0).days))
    sel = sel[gap <= WINDOW_DAYS]
    if not len(sel):
        return sel
    gap = sel["date"].map(lambda s: ((_day(s) - d0).days > 0, abs((_day(s) - d0).days)))
    best = min(gap)
    return sel[gap.map(lambda g: g == best)]


def protocol_map(labs: pd.DataFrame | None, date: str) -> dict[str, Any] | None:
    """MAP of the visit on ``date`` (see the module docstring), or None."""
    if labs is None or len(labs) == 0:
        return None
    s, d = _near(labs, "systolic_bp", date), _near(labs, "diastolic_bp", date)
    site = "body_site" if "body_site" in labs.columns else None

    def key(r):
        return (r["date"], str(r[site]) if site and isinstance(r[site], str) else "")

    dmap = {key(r): float(r["value"]) for _, r in d.iterrows()}
    readings = []
    for _, r in s.iterrows():
        k = key(r)
        if k in dmap:
            sbp, dbp = float(r["value"]), dmap[k]
            readings.append({"time": str(r["date"]), "site": k[1], "sbp_mmhg": sbp, "dbp_mmhg": dbp,
                             "map_mmhg": dbp + (sbp - dbp) / 3.0})
    notes = []
    if readings:
        value = sum(x["map_mmhg"] for x in readings) / len(readings)
        sites = {x["site"] for x in readings}
        if len(readings) < 4 or len(sites) < 2:
            notes.append(f"MAP from {len(readings)} reading(s) on {len(sites)} arm(s); the FMF protocol takes "
                         "two readings on each arm")
        return {"map_mmhg": value, "n_readings": len(readings), "readings": readings,
                "date": str(readings[0]["time"])[:10], "notes": notes}
    m = _near(labs, "mean_bp", date)
    if len(m):
        return {"map_mmhg": float(m["value"].mean()), "n_readings": int(len(m)), "readings": [],
                "date": str(m["date"].iloc[0])[:10],
                "notes": ["MAP from mean blood pressure rows (LOINC 8478-0), protocol not checked"]}
    return None


def biomarker(labs: pd.DataFrame | None, date: str, analyte: str) -> dict[str, Any] | None:
    """The value (canonical unit), analyser and sample date of ``analyte`` near ``date``."""
    if labs is None or len(labs) == 0:
        return None
    sel = _near(labs, analyte, date)
    if not len(sel):
        return None
    r = sel.iloc[-1]
    return {"value": float(r["value"]), "unit": str(r["unit"]),
            "analyser": str(r.get("analyser", "") or "") or None, "date": str(r["date"])[:10]}
