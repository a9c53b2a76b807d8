"""Patient physiology from labs and demographics, evaluated at a treatment date.

:func:`physiology_at` returns, for one date, every derived quantity with its inputs and
source: eGFR (CKD-EPI 2021), creatinine clearance (Cockcroft-Gault), BSA (Mosteller and
DuBois), BMI, hepatic category (NCI ODWG), neutrophil/platelet eligibility.  Each input is
the most recent plausible value on or before the date; a missing analyte falls back to
:data:`twinflow.physiology.labs.DEFAULTS` and is listed under ``assumptions``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from twinflow.physiology.body import bmi, bsa_dubois, bsa_mosteller
from twinflow.physiology.eligibility import dosing_eligibility
from twinflow.physiology.hepatic import AST_ULN_U_L, BILIRUBIN_ULN_UMOL_L, nci_odwg_category
from twinflow.physiology.labs import DEFAULTS, latest_before, load_labs, value_or_default
from twinflow.physiology.renal import ckd_epi_2021, cockcroft_gault, deindex_egfr

__all__ = [
    "DEFAULTS", "bmi", "bsa_dubois", "bsa_mosteller", "ckd_epi_2021", "cockcroft_gault",
    "deindex_egfr", "dosing_eligibility", "latest_before", "load_labs", "nci_odwg_category",
    "physiology_at",
]


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def physiology_at(labs: pd.DataFrame | str | None, patient: dict[str, Any], date: str) -> dict[str, Any]:
    """Physiology of ``patient`` (sex, age_years, height_cm, weight_kg) on ``date``."""
    labs = load_labs(labs)
    assumptions: list[str] = []
    sex = str(patient.get("sex", "")).strip().upper()[:1]
    if sex not in ("F", "M"):
        raise ValueError(f"patient sex must be F or M, got {patient.get('sex')!r}")
    age = _num(patient.get("age_years"))
    if age is None:
        raise ValueError("patient age_years is required")

    def body(key: str, analyte: str) -> dict[str, Any]:
        v = _num(patient.get(key))
        if v is not None:
            return {"value": v, "unit": DEFAULTS[analyte][1], "date": None, "source": "patients sheet"}
        return value_or_default(labs, analyte, date, assumptions)

    h = body("height_cm", "body_height")
    w = body("weight_kg", "body_weight")
    cr = value_or_default(labs, "creatinine", date, assumptions)
    bili = value_or_default(labs, "bilirubin_total", date, assumptions)
    ast = value_or_default(labs, "ast", date, assumptions)
    anc = value_or_default(labs, "neutrophils", date, assumptions)
    plt = value_or_default(labs, "platelets", date, assumptions)
    bsa_m = bsa_mosteller(h["value"], w["value"])
    egfr = ckd_epi_2021(cr["value"], age, sex)
    out = {
        "date": str(date)[:10],
        "inputs": {"sex": sex, "age_years": age, "height_cm": h, "weight_kg": w, "creatinine_umol_l": cr,
                   "bilirubin_total_umol_l": bili, "ast_u_l": ast, "neutrophils_1e9_l": anc,
                   "platelets_1e9_l": plt},
        "bsa_mosteller_m2": {"value": bsa_m, "source": "Mosteller, N Engl J Med 1987;317:1098"},
        "bsa_dubois_m2": {"value": bsa_dubois(h["value"], w["value"]),
                          "source": "DuBois & DuBois, Arch Intern Med 1916;17:863"},
        "bmi_kg_m2": {"value": bmi(h["value"], w["value"]), "source": "weight / height^2"},
        "egfr_ml_min_1_73m2": {"value": egfr, "source": "CKD-EPI 2021 creatinine, race-free (Inker et al., N Engl J Med 2021;385:1737)"},
        "gfr_ml_min": {"value": deindex_egfr(egfr, bsa_m),
                       "source": "CKD-EPI 2021 eGFR x BSA(Mosteller) / 1.73"},
        "crcl_cockcroft_gault_ml_min": {"value": cockcroft_gault(cr["value"], age, w["value"], sex),
                                        "source": "Cockcroft & Gault, Nephron 1976;16:31 (total body weight)"},
        "hepatic_function": {"value": nci_odwg_category(bili["value"], ast["value"]),
                             "source": "NCI Organ Dysfunction Working Group",
                             "bilirubin_uln_umol_l": BILIRUBIN_ULN_UMOL_L, "ast_uln_u_l": AST_ULN_U_L},
        "eligibility": dosing_eligibility(anc["value"], plt["value"]),
        "assumptions": assumptions,
    }
    return out
