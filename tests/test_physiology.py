"""Physiology formulas against published equations and hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from twinflow.physiology import (
    bsa_dubois,
    bsa_mosteller,
    ckd_epi_2021,
    cockcroft_gault,
    dosing_eligibility,
    latest_before,
    nci_odwg_category,
    physiology_at,
)
from twinflow.physiology.renal import CREATININE_UMOL_PER_MG_DL

MGDL = CREATININE_UMOL_PER_MG_DL  # 88.40 umol/L per mg/dL


def test_ckd_epi_2021_values():
    # Inker et al. 2021: 142 * min(Scr/k,1)^a * max(Scr/k,1)^-1.2 * 0.9938^age (* 1.012 F)
    # male 50 y, Scr 1.0 mg/dL: 142 * (1/0.9)^-1.2 * 0.9938^50 = 91.7 (NKF calculator: 92)
    assert ckd_epi_2021(1.0 * MGDL, 50, "M") == pytest.approx(91.69, abs=0.01)
    # female 60 y, Scr 0.8: 142 * (0.8/0.7)^-1.2 * 0.9938^60 * 1.012 = 84.3
    assert ckd_epi_2021(0.8 * MGDL, 60, "F") == pytest.approx(84.30, abs=0.01)
    # below the knee the exponent is alpha: female 40 y, Scr 0.5: (0.5/0.7)^-0.241
    assert ckd_epi_2021(0.5 * MGDL, 40, "F") == pytest.approx(
        142 * (0.5 / 0.7) ** -0.241 * 0.9938 ** 40 * 1.012, rel=1e-12)
    assert ckd_epi_2021(0.5 * MGDL, 40, "F") == pytest.approx(121.5, abs=0.1)
    # at the knee (Scr = kappa) only age and sex remain: male 40 y -> 142 * 0.9938^40
    assert ckd_epi_2021(0.9 * MGDL, 40, "M") == pytest.approx(110.73, abs=0.01)
    with pytest.raises(ValueError):
        ckd_epi_2021(80, 40, "X")


def test_cockcroft_gault_and_bsa():
    # (140 - 40) * 72 / (72 * 1.0) = 100 mL/min; women x 0.85
    assert cockcroft_gault(1.0 * MGDL, 40, 72, "M") == pytest.approx(100.0)
    assert cockcroft_gault(1.0 * MGDL, 40, 72, "F") == pytest.approx(85.0)
    assert cockcroft_gault(2.0 * MGDL, 80, 60, "M") == pytest.approx(25.0)
    assert bsa_mosteller(180, 80) == pytest.approx(2.0)          # sqrt(180 * 80 / 3600)
    assert bsa_mosteller(160, 90) == pytest.approx(2.0)
    assert bsa_dubois(180, 80) == pytest.approx(0.007184 * 80 ** 0.425 * 180 ** 0.725)
    assert bsa_dubois(180, 80) == pytest.approx(1.996, abs=0.001)


def test_nci_odwg_hepatic_categories():
    assert nci_odwg_category(15, 30) == "normal"
    assert nci_odwg_category(15, 60) == "mild"       # AST > ULN, bilirubin normal
    assert nci_odwg_category(30, 20) == "mild"       # 1.43 x ULN
    assert nci_odwg_category(31.5, 200) == "mild"    # exactly 1.5 x ULN
    assert nci_odwg_category(40, 20) == "moderate"   # 1.9 x ULN
    assert nci_odwg_category(63, 20) == "moderate"   # exactly 3 x ULN
    assert nci_odwg_category(64, 20) == "severe"


def test_eligibility_thresholds():
    assert dosing_eligibility(1.5, 100)["eligible"]
    e = dosing_eligibility(1.49, 99)
    assert not e["eligible"] and len(e["reasons"]) == 2


def _labs():
    return pd.DataFrame({
        "date": ["2024-01-01", "2024-01-15T08:00:00Z", "2024-02-01", "2024-01-10"],
        "analyte": ["creatinine", "creatinine", "creatinine", "creatinine"],
        "value": [60.0, 90.0, 150.0, 9999.0], "unit": ["umol/L"] * 4,
        "plausible": [True, True, True, False]})


def test_latest_before_uses_most_recent_plausible_value():
    labs = _labs()
    assert latest_before(labs, "creatinine", "2024-01-14")["value"] == 60.0   # implausible row ignored
    assert latest_before(labs, "creatinine", "2024-01-15")["value"] == 90.0   # same day counts
    assert latest_before(labs, "creatinine", "2024-03-01")["value"] == 150.0
    assert latest_before(labs, "creatinine", "2023-12-31") is None
    assert latest_before(labs, "platelets", "2024-03-01") is None


def test_physiology_at_defaults_are_reported():
    pat = {"sex": "F", "age_years": 60, "height_cm": 160, "weight_kg": 90}
    p = physiology_at(_labs(), pat, "2024-01-20")
    assert p["inputs"]["creatinine_umol_l"]["value"] == 90.0
    assert p["egfr_ml_min_1_73m2"]["value"] == pytest.approx(ckd_epi_2021(90.0, 60, "F"))
    assert p["gfr_ml_min"]["value"] == pytest.approx(p["egfr_ml_min_1_73m2"]["value"] * 2.0 / 1.73)
    assert p["bsa_mosteller_m2"]["value"] == pytest.approx(2.0)
    assert {a.split(":")[0] for a in p["assumptions"]} == {"bilirubin_total", "ast", "neutrophils", "platelets"}
    assert p["hepatic_function"]["value"] == "normal" and p["eligibility"]["eligible"]
    q = physiology_at(None, {"sex": "M", "age_years": 50}, "2024-01-01")
    assert q["inputs"]["height_cm"]["source"] == "default" and q["inputs"]["weight_kg"]["value"] == 70.0
    assert math.isclose(q["inputs"]["creatinine_umol_l"]["value"], 80.0)
