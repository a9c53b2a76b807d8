"""Dose rules that follow published guidelines and equations.

Every function returns a dict with the result, its inputs and its source, so that the
patient record can show where a number came from.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "calvert_dose_mg",
    "fluoropyrimidine_dpyd",
    "irinotecan_ugt1a1",
    "iwpc_warfarin_weekly_dose_mg",
    "thiopurine_tpmt_nudt15",
]


def calvert_dose_mg(target_auc_mg_min_ml: float, gfr_ml_min: float) -> dict[str, Any]:
    """Carboplatin dose (mg) = target AUC (mg/mL*min) x (GFR (mL/min) + 25).

    Calvert AH et al., J Clin Oncol 1989;7:1748-1756.  Example: AUC 5, GFR 90 -> 575 mg.
    """
    if target_auc_mg_min_ml <= 0 or gfr_ml_min < 0:
        raise ValueError("target AUC must be > 0 and GFR >= 0")
    dose = target_auc_mg_min_ml * (gfr_ml_min + 25.0)
    return {"dose_mg": dose, "inputs": {"target_auc_mg_min_ml": target_auc_mg_min_ml, "gfr_ml_min": gfr_ml_min},
            "rule": "dose = AUC x (GFR + 25)", "source": "Calvert et al., J Clin Oncol 1989;7:1748"}


def fluoropyrimidine_dpyd(activity_score: float | None) -> dict[str, Any]:
    """CPIC DPYD recommendation for 5-fluorouracil / capecitabine starting dose.

    Amstutz U et al., Clin Pharmacol Ther 2018;103:210-216 (CPIC 2017 update):
    AS 2 -> normal dose; AS 1 or 1.5 -> reduce the starting dose by 50% then titrate;
    AS 0.5 -> avoid (if no alternative, strongly reduced dose with drug monitoring);
    AS 0 -> avoid.  ``dose_fraction`` is None when the drug should be avoided.
    """
    src = "CPIC DPYD-fluoropyrimidines, Amstutz et al., Clin Pharmacol Ther 2018;103:210"
    if activity_score is None:
        return {"dose_fraction": 1.0, "recommendation": "DPYD activity score unknown: standard "
                "starting dose, no genotype-guided adjustment possible", "activity_score": None,
                "source": src, "phenotype_known": False}
    s = float(activity_score)
    if s >= 2.0:
        frac, rec = 1.0, "normal DPD activity: standard starting dose"
    elif s >= 1.0:
        frac, rec = 0.5, "intermediate metaboliser: reduce starting dose by 50%, then titrate on toxicity"
    elif s >= 0.5:
        frac, rec = None, ("poor metaboliser (AS 0.5): avoid fluoropyrimidines; if no alternative, "
                           "strongly reduced dose with early therapeutic drug monitoring")
    else:
        frac, rec = None, "poor metaboliser (AS 0): avoid fluoropyrimidines"
    return {"dose_fraction": frac, "recommendation": rec, "activity_score": s, "source": src,
            "phenotype_known": True}


def irinotecan_ugt1a1(phenotype: str | None) -> dict[str, Any]:
    """UGT1A1 genotype-guided irinotecan starting dose.

    CPIC has no irinotecan guideline (its UGT1A1 guideline covers atazanavir); the
    published rule used is DPWG (Hulshof EC et al., Eur J Hum Genet 2022;30:1114):
    poor metaboliser (e.g. *28/*28, *6/*6, *28/*6) -> start at 70% of the standard dose and
    titrate on neutrophils; intermediate and normal -> standard dose.  The FDA label also
    advises a reduced starting dose for *28 homozygotes.
    """
    src = "DPWG UGT1A1-irinotecan, Hulshof et al., Eur J Hum Genet 2022;30:1114"
    if phenotype == "Poor Metabolizer":
        return {"dose_fraction": 0.7, "recommendation": "UGT1A1 poor metaboliser: start at 70% of the "
                "standard dose, increase if neutrophil count allows", "phenotype": phenotype, "source": src}
    if phenotype in ("Normal Metabolizer", "Intermediate Metabolizer"):
        return {"dose_fraction": 1.0, "recommendation": "standard starting dose", "phenotype": phenotype,
                "source": src}
    return {"dose_fraction": 1.0, "recommendation": "UGT1A1 phenotype unknown: standard starting dose, "
            "no genotype-guided adjustment possible", "phenotype": phenotype, "source": src}


def thiopurine_tpmt_nudt15(tpmt_phenotype: str | None, nudt15_phenotype: str | None,
                           drug: str = "mercaptopurine") -> dict[str, Any]:
    """CPIC TPMT/NUDT15 starting dose for thiopurines (malignancy dosing).

    Relling MV et al., Clin Pharmacol Ther 2019;105:1095-1105.  Fractions of the standard
    starting dose: both normal -> 1; intermediate (possible intermediate) in either gene ->
    30-80% (mercaptopurine/azathioprine; 50-80% for thioguanine); intermediate in both ->
    consider a larger reduction (the lower bound); poor in either -> 10-fold lower dose given
    3 times a week instead of daily (TPMT) or 10 mg/m^2/day (NUDT15 PM, mercaptopurine).
    Returns ``dose_fraction_range`` (low, high) of the standard daily dose.
    """
    src = "CPIC TPMT/NUDT15-thiopurines, Relling et al., Clin Pharmacol Ther 2019;105:1095"
    phen = {"TPMT": tpmt_phenotype, "NUDT15": nudt15_phenotype}

    def level(p: str | None) -> str:
        if p in ("Poor Metabolizer",):
            return "PM"
        if p in ("Intermediate Metabolizer", "Possible Intermediate Metabolizer"):
            return "IM"
        if p == "Normal Metabolizer":
            return "NM"
        return "unknown"

    lv = {g: level(p) for g, p in phen.items()}
    im_range = (0.5, 0.8) if drug == "thioguanine" else (0.3, 0.8)
    if "PM" in lv.values():
        rng, rec = (0.1 / 7 * 3, 0.1 / 7 * 3), ("poor metaboliser: for malignancy start with a "
                                                  "drastically reduced dose (10-fold lower, 3 times a week); "
                                                  "for non-malignant conditions consider an alternative")
    elif list(lv.values()).count("IM") == 2:
        rng, rec = (im_range[0], im_range[0]), "intermediate in TPMT and NUDT15: start at the low end of 30-80%"
    elif "IM" in lv.values():
        rng, rec = im_range, f"intermediate metaboliser: start at {int(im_range[0]*100)}-80% of the standard dose"
    elif "unknown" in lv.values():
        rng, rec = (1.0, 1.0), "phenotype unknown for " + ", ".join(g for g, v in lv.items() if v == "unknown") + \
            ": standard starting dose, no genotype-guided adjustment possible"
    else:
        rng, rec = (1.0, 1.0), "normal metaboliser: standard starting dose"
    return {"dose_fraction_range": list(rng), "recommendation": rec, "phenotypes": phen, "drug": drug, "source": src}


# IWPC pharmacogenetic dosing algorithm (Klein TE et al., N Engl J Med 2009;360:753-764,
# supplementary appendix): sqrt(weekly dose in mg) = 5.6044 - 0.2614 age_decades
# + 0.0087 height_cm + 0.0128 weight_kg + VKORC1 + CYP2C9 + race + 1.1816 enzyme_inducer
# - 0.5503 amiodarone.
IWPC = {
    "intercept": 5.6044, "age_decades": -0.2614, "height_cm": 0.0087, "weight_kg": 0.0128,
    "vkorc1": {"GG": 0.0, "GA": -0.8677, "AA": -1.6974, None: -0.4854},
    "cyp2c9": {"*1/*1": 0.0, "*1/*2": -0.5211, "*1/*3": -0.9357, "*2/*2": -1.0616, "*2/*3": -1.9206,
               "*3/*3": -2.3312, None: -0.2188},
    "race": {"white": 0.0, "asian": -0.1092, "black": -0.2760, None: -0.1032},
    "enzyme_inducer": 1.1816, "amiodarone": -0.5503,
}


def iwpc_warfarin_weekly_dose_mg(age_years: float, height_cm: float, weight_kg: float, *,
                                 vkorc1: str | None, cyp2c9: str | None, race: str | None = None,
                                 enzyme_inducer: bool = False, amiodarone: bool = False) -> dict[str, Any]:
    """IWPC pharmacogenetic warfarin dose (mg/week).

    ``vkorc1``: rs9923231 (-1639G>A) genotype 'GG', 'GA' or 'AA' (None: unknown);
    ``cyp2c9``: one of '*1/*1', '*1/*2', '*1/*3', '*2/*2', '*2/*3', '*3/*3' (None: unknown
    or another diplotype); ``race``: 'white', 'asian', 'black' or None (missing or mixed).
    Age enters in whole decades (``floor(age / 10)``) as in the IWPC spreadsheet.
    """
    decades = math.floor(age_years / 10.0)
    v = vkorc1 if vkorc1 in IWPC["vkorc1"] else None
    c = cyp2c9 if cyp2c9 in IWPC["cyp2c9"] else None
    r = race.lower() if isinstance(race, str) and race.lower() in IWPC["race"] else None
    s = (IWPC["intercept"] + IWPC["age_decades"] * decades + IWPC["height_cm"] * height_cm
         + IWPC["weight_kg"] * weight_kg + IWPC["vkorc1"][v] + IWPC["cyp2c9"][c] + IWPC["race"][r]
         + (IWPC["enzyme_inducer"] if enzyme_inducer else 0.0) + (IWPC["amiodarone"] if amiodarone else 0.0))
    weekly = s * s
    return {"weekly_dose_mg": weekly, "daily_dose_mg": weekly / 7.0,
            "inputs": {"age_decades": decades, "height_cm": height_cm, "weight_kg": weight_kg,
                       "vkorc1": v or "unknown", "cyp2c9": c or "unknown/other", "race": r or "unknown/mixed",
                       "enzyme_inducer": enzyme_inducer, "amiodarone": amiodarone},
            "source": "IWPC pharmacogenetic algorithm, Klein et al., N Engl J Med 2009;360:753"}
