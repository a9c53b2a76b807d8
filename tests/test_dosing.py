"""Dose rules and the drug library against published formulas and worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from twinflow.pkpd.dosing import (
    calvert_dose_mg,
    fluoropyrimidine_dpyd,
    irinotecan_ugt1a1,
    iwpc_warfarin_weekly_dose_mg,
    thiopurine_tpmt_nudt15,
)
from twinflow.pkpd.drugs import DRUGS, individual_pk, one_compartment


def test_calvert():
    assert calvert_dose_mg(5, 90)["dose_mg"] == 575.0           # AUC 5, GFR 90 -> 575 mg
    assert calvert_dose_mg(6, 125)["dose_mg"] == 900.0
    with pytest.raises(ValueError):
        calvert_dose_mg(0, 90)


def test_carboplatin_pk_reproduces_the_calvert_target():
    pk = individual_pk("carboplatin", {"gfr_ml_min": 90})
    m = one_compartment(pk)
    auc_mg_h_l = 575 * m.total_auc_per_mg()
    assert auc_mg_h_l * 60 / 1000 == pytest.approx(5.0)        # mg*h/L -> mg*min/mL
    t = np.linspace(0, 200, 20001)
    num = np.trapezoid(m.concentration(t, [0.0], [575.0]), t)
    assert num == pytest.approx(auc_mg_h_l, rel=1e-3)


def test_dpyd_cpic():
    assert fluoropyrimidine_dpyd(2.0)["dose_fraction"] == 1.0
    assert fluoropyrimidine_dpyd(1.5)["dose_fraction"] == 0.5
    assert fluoropyrimidine_dpyd(1.0)["dose_fraction"] == 0.5
    assert fluoropyrimidine_dpyd(0.5)["dose_fraction"] is None
    assert fluoropyrimidine_dpyd(0.0)["dose_fraction"] is None
    unknown = fluoropyrimidine_dpyd(None)
    assert unknown["dose_fraction"] == 1.0 and not unknown["phenotype_known"]


def test_ugt1a1_and_thiopurines():
    assert irinotecan_ugt1a1("Poor Metabolizer")["dose_fraction"] == 0.7
    assert irinotecan_ugt1a1("Intermediate Metabolizer")["dose_fraction"] == 1.0
    assert thiopurine_tpmt_nudt15("Normal Metabolizer", "Normal Metabolizer")["dose_fraction_range"] == [1.0, 1.0]
    assert thiopurine_tpmt_nudt15("Intermediate Metabolizer", "Normal Metabolizer")["dose_fraction_range"] == [0.3, 0.8]
    assert thiopurine_tpmt_nudt15("Intermediate Metabolizer", "Normal Metabolizer",
                                  "thioguanine")["dose_fraction_range"] == [0.5, 0.8]
    pm = thiopurine_tpmt_nudt15("Normal Metabolizer", "Poor Metabolizer")["dose_fraction_range"]
    assert pm[0] == pytest.approx(0.3 / 7)                      # 10-fold lower, 3 of 7 days


def test_iwpc_warfarin_worked_example():
    # 65 y (6 decades), 170 cm, 80 kg, VKORC1 -1639 G/A, CYP2C9 *1/*2, white:
    # 5.6044 - 0.2614*6 + 0.0087*170 + 0.0128*80 - 0.8677 - 0.5211 = 5.1502 -> 26.52 mg/week
    w = iwpc_warfarin_weekly_dose_mg(65, 170, 80, vkorc1="GA", cyp2c9="*1/*2", race="white")
    assert w["weekly_dose_mg"] == pytest.approx(5.1502 ** 2, abs=1e-3)
    # *3/*3 and A/A, asian, amiodarone: 5.6044 - 0.2614*7 + 0.0087*160 + 0.0128*55 - 1.6974
    #   - 2.3312 - 0.1092 - 0.5503 = 1.1825 -> 1.398 mg/week
    w2 = iwpc_warfarin_weekly_dose_mg(72, 160, 55, vkorc1="AA", cyp2c9="*3/*3", race="Asian", amiodarone=True)
    assert w2["weekly_dose_mg"] == pytest.approx(1.1825 ** 2, abs=1e-3)
    # unknown genotypes use the IWPC 'missing' coefficients
    w3 = iwpc_warfarin_weekly_dose_mg(50, 180, 90, vkorc1=None, cyp2c9="*1/*8")
    s = 5.6044 - 0.2614 * 5 + 0.0087 * 180 + 0.0128 * 90 - 0.4854 - 0.2188 - 0.1032
    assert w3["weekly_dose_mg"] == pytest.approx(s * s)


def test_drug_library_covariates():
    assert set(DRUGS) >= {"temozolomide", "fluorouracil", "capecitabine", "carboplatin", "paclitaxel",
                          "irinotecan", "metoprolol"}
    for name, spec in DRUGS.items():
        assert spec.sources, name
    tmz = individual_pk("temozolomide", {"bsa_m2": 2.0, "weight_kg": 80, "sex": "F"})
    assert tmz["cl_l_h"] == pytest.approx(5.5 * 2.0 * 0.95) and tmz["v_l"] == pytest.approx(32.0)
    assert tmz["ka_per_h"] == 5.8 and tmz["f"] == 1.0
    fu2 = individual_pk("fluorouracil", {"bsa_m2": 1.8, "weight_kg": 70, "dpyd_activity_score": 2.0})
    fu1 = individual_pk("fluorouracil", {"bsa_m2": 1.8, "weight_kg": 70, "dpyd_activity_score": 1.0})
    assert fu1["cl_l_h"] / fu2["cl_l_h"] == pytest.approx(0.6)   # 0.2 + 0.8 * 1/2
    assert fu2["ka_per_h"] is None
    nm = individual_pk("metoprolol", {"weight_kg": 70, "cyp2d6_phenotype": "Normal Metabolizer"})
    pm = individual_pk("metoprolol", {"weight_kg": 70, "cyp2d6_phenotype": "Poor Metabolizer"})
    assert one_compartment(pm).total_auc_per_mg() / one_compartment(nm).total_auc_per_mg() == pytest.approx(4.9)
    ind = individual_pk("metoprolol", {"weight_kg": 70, "cyp2d6_phenotype": "Indeterminate"})
    assert ind["cl_l_h"] == nm["cl_l_h"] and ind["assumptions"]
    with pytest.raises(KeyError):
        individual_pk("aspirin", {})
