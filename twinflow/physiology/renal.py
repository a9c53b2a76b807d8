"""Kidney function: CKD-EPI 2021 eGFR (race-free) and Cockcroft-Gault creatinine clearance.

Creatinine is taken in umol/L (the canonical unit of :mod:`twinflow.io.labs`) and converted
to mg/dL with the molar mass used there (113.12 g/mol: 1 mg/dL = 88.40 umol/L).
"""

from __future__ import annotations

CREATININE_UMOL_PER_MG_DL = 10_000.0 / 113.12  # 88.40 umol/L per mg/dL


def creatinine_mg_dl(creatinine_umol_l: float) -> float:
    return creatinine_umol_l / CREATININE_UMOL_PER_MG_DL


def _check_sex(sex: str) -> str:
    s = str(sex).strip().upper()[:1]
    if s not in ("F", "M"):
        raise ValueError(f"sex must be 'F' or 'M', got {sex!r}")
    return s


def ckd_epi_2021(creatinine_umol_l: float, age_years: float, sex: str) -> float:
    """eGFR (mL/min/1.73 m^2), CKD-EPI creatinine equation 2021 without race.

    ``142 * min(Scr/k, 1)^a * max(Scr/k, 1)^-1.200 * 0.9938^age * (1.012 if female)`` with
    k = 0.7 (F) / 0.9 (M) and a = -0.241 (F) / -0.302 (M); Scr in mg/dL.
    Inker LA et al., N Engl J Med 2021;385:1737-1749.
    """
    s = _check_sex(sex)
    scr = creatinine_mg_dl(creatinine_umol_l)
    k, a = (0.7, -0.241) if s == "F" else (0.9, -0.302)
    r = scr / k
    egfr = 142.0 * min(r, 1.0) ** a * max(r, 1.0) ** -1.200 * 0.9938 ** age_years
    return egfr * (1.012 if s == "F" else 1.0)


def cockcroft_gault(creatinine_umol_l: float, age_years: float, weight_kg: float, sex: str) -> float:
    """Creatinine clearance (mL/min): ``(140 - age) * weight / (72 * Scr[mg/dL]) * (0.85 if F)``.

    Cockcroft DW, Gault MH. Nephron 1976;16:31-41.  Uses total body weight as given.
    """
    s = _check_sex(sex)
    scr = creatinine_mg_dl(creatinine_umol_l)
    crcl = (140.0 - age_years) * weight_kg / (72.0 * scr)
    return crcl * (0.85 if s == "F" else 1.0)


def deindex_egfr(egfr_ml_min_1_73m2: float, bsa_m2: float) -> float:
    """Absolute GFR (mL/min) from an eGFR indexed to 1.73 m^2."""
    return egfr_ml_min_1_73m2 * bsa_m2 / 1.73
