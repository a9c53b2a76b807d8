"""Drug library: population PK with covariates -> individual one-compartment parameters.

Each entry documents its typical values, covariate model and sources.  The result of
:func:`individual_pk` is a dict (``cl_l_h``, ``v_l``, ``ka_per_h`` (oral only), ``f``) plus the
covariates used and the source, and :func:`one_compartment` turns it into a
:class:`twinflow.pkpd.compartment.OneCompartment` for the twin models.

Covariates (keys of ``cov``): ``bsa_m2``, ``weight_kg``, ``sex`` ('F'/'M'), ``gfr_ml_min``
(absolute, not indexed), ``dpyd_activity_score``, ``cyp2d6_phenotype``,
``ugt1a1_phenotype``.  A missing covariate uses the reference value named in the entry and
is listed under ``assumptions``.

The typical values are population means quoted from the named labels and papers, rounded;
a one-compartment model is a simplification for drugs with multi-exponential kinetics
(paclitaxel, irinotecan), chosen because the tissue models consume exposure (AUC) over
days, which a one-compartment model with the right clearance reproduces.  They are
research defaults, not dosing advice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from twinflow.pkpd.compartment import OneCompartment

__all__ = ["DRUGS", "DrugSpec", "individual_pk", "one_compartment"]

REFERENCE = {"bsa_m2": 1.8, "weight_kg": 70.0, "sex": "M", "gfr_ml_min": 100.0,
             "dpyd_activity_score": 2.0, "cyp2d6_phenotype": "Normal Metabolizer",
             "ugt1a1_phenotype": "Normal Metabolizer"}


@dataclass(frozen=True)
class DrugSpec:
    name: str
    route: str                      # 'iv' or 'oral'
    description: str                # typical values and covariate model, in words
    sources: tuple[str, ...]
    model: Callable[[dict[str, Any]], dict[str, float]] = field(repr=False)
    covariates: tuple[str, ...] = ()


def _tmz(c):
    cl = 5.5 * c["bsa_m2"] * (0.95 if c["sex"] == "F" else 1.0)
    return {"cl_l_h": cl, "v_l": 0.4 * c["weight_kg"], "ka_per_h": 5.8, "f": 1.0}


def _fu(c):
    # DPD catabolises ~80% of a 5-FU dose; the DPD-dependent part scales with AS/2.
    dpd = 0.2 + 0.8 * min(c["dpyd_activity_score"], 2.0) / 2.0
    return {"cl_l_h": 54.0 * c["bsa_m2"] / 1.8 * dpd, "v_l": 0.25 * c["weight_kg"], "f": 1.0}


def _cape(c):
    dpd = 0.2 + 0.8 * min(c["dpyd_activity_score"], 2.0) / 2.0
    # 5-FU formed from oral capecitabine: formation-rate limited (ka), 5-FU clearance as above.
    return {"cl_l_h": 54.0 * c["bsa_m2"] / 1.8 * dpd, "v_l": 0.25 * c["weight_kg"], "ka_per_h": 0.7,
            "f": 0.1}


def _carbo(c):
    return {"cl_l_h": (c["gfr_ml_min"] + 25.0) * 60.0 / 1000.0, "v_l": 16.0, "f": 1.0}


def _pacli(c):
    return {"cl_l_h": 18.0 * c["bsa_m2"], "v_l": 200.0 * c["bsa_m2"], "f": 1.0}


def _irino(c):
    return {"cl_l_h": 13.3 * c["bsa_m2"], "v_l": 110.0 * c["bsa_m2"], "f": 1.0}


_CYP2D6_AUC_RATIO = {"Poor Metabolizer": 4.9, "Intermediate Metabolizer": 2.5,
                     "Normal Metabolizer": 1.0, "Ultrarapid Metabolizer": 0.6}


def _meto(c):
    ratio = _CYP2D6_AUC_RATIO.get(c["cyp2d6_phenotype"], 1.0)
    return {"cl_l_h": 58.0 * c["weight_kg"] / 70.0 / ratio, "v_l": 4.2 * c["weight_kg"], "ka_per_h": 1.0,
            "f": 0.5}


DRUGS: dict[str, DrugSpec] = {d.name: d for d in (
    DrugSpec("temozolomide", "oral",
             "CL = 5.5 L/h/m^2 x BSA (x0.95 in women); V = 0.4 L/kg; ka = 5.8 /h; F = 1 (complete "
             "oral bioavailability); t1/2 about 1.8 h",
             ("Temodar (temozolomide) US prescribing information, section 12.3",
              "Ostermann S et al., Clin Cancer Res 2004;10:3728-3736 (ka)"),
             _tmz, ("bsa_m2", "weight_kg", "sex")),
    DrugSpec("fluorouracil", "iv",
             "CL = 54 L/h per 1.8 m^2 (about 0.9 L/min) x BSA/1.8 x (0.2 + 0.8 x DPYD AS/2); "
             "V = 0.25 L/kg; t1/2 10-20 min.  About 80% of 5-FU is catabolised by DPD, so the DPD "
             "share of clearance scales with the DPYD activity score",
             ("Diasio RB, Harris BE, Clin Pharmacokinet 1989;16:215-237",
              "CPIC DPYD guideline, Amstutz et al., Clin Pharmacol Ther 2018;103:210"),
             _fu, ("bsa_m2", "weight_kg", "dpyd_activity_score")),
    DrugSpec("capecitabine", "oral",
             "modelled as the 5-FU it delivers: 5-FU clearance and volume as for fluorouracil "
             "(with DPYD), formation rate ka = 0.7 /h, F = 0.1 (fraction of the capecitabine dose "
             "reaching the circulation as 5-FU, mg-equivalent)",
             ("Reigner B et al., Clin Pharmacokinet 2001;40:85-104",
              "CPIC DPYD guideline, Amstutz et al., Clin Pharmacol Ther 2018;103:210"),
             _cape, ("bsa_m2", "weight_kg", "dpyd_activity_score")),
    DrugSpec("carboplatin", "iv",
             "CL = GFR + 25 mL/min (renal + non-renal; the basis of the Calvert formula); V = 16 L",
             ("Calvert AH et al., J Clin Oncol 1989;7:1748-1756",
              "Paraplatin (carboplatin) prescribing information, clinical pharmacology"),
             _carbo, ("gfr_ml_min",)),
    DrugSpec("paclitaxel", "iv",
             "CL = 18 L/h/m^2 x BSA (label range 12-24 L/h/m^2 for 3-24 h infusions); "
             "V = 200 L/m^2 x BSA (one-compartment approximation)",
             ("Taxol (paclitaxel) US prescribing information, section 12.3",),
             _pacli, ("bsa_m2",)),
    DrugSpec("irinotecan", "iv",
             "CL = 13.3 L/h/m^2 x BSA; V = 110 L/m^2 x BSA (t1/2 about 6 h).  UGT1A1 changes SN-38 "
             "glucuronidation, not irinotecan clearance: it enters through the dose rule",
             ("Camptosar (irinotecan) US prescribing information, section 12.3",
              "DPWG UGT1A1-irinotecan, Hulshof et al., Eur J Hum Genet 2022;30:1114"),
             _irino, ("bsa_m2",)),
    DrugSpec("metoprolol", "oral",
             "CL = 58 L/h x weight/70 for CYP2D6 normal metabolisers, divided by the CYP2D6 AUC "
             "ratio (PM 4.9, IM 2.5, UM 0.6); V = 4.2 L/kg; ka = 1 /h; F = 0.5",
             ("Lopressor (metoprolol) US prescribing information, clinical pharmacology",
              "Blake CM et al., Clin Pharmacol Ther 2013;94:394-399 (AUC by CYP2D6 phenotype)",
              "CPIC CYP2D6-beta-blockers, Duarte JD et al., Clin Pharmacol Ther 2024"),
             _meto, ("weight_kg", "cyp2d6_phenotype")),
)}


def individual_pk(drug: str, cov: dict[str, Any]) -> dict[str, Any]:
    """Individual PK parameters of ``drug`` for covariates ``cov`` (see module doc)."""
    if drug not in DRUGS:
        raise KeyError(f"drug {drug!r} is not in the library ({', '.join(sorted(DRUGS))})")
    spec = DRUGS[drug]
    used: dict[str, Any] = {}
    assumptions = []
    for k in spec.covariates:
        v = cov.get(k)
        if v is None or (k.endswith("phenotype") and v == "Indeterminate"):
            v = REFERENCE[k]
            assumptions.append(f"{drug}: {k} unknown, reference value {v!r} used")
        used[k] = v
    if "sex" in used:
        used["sex"] = str(used["sex"]).upper()[:1]
    params = spec.model(used)
    out: dict[str, Any] = {"drug": drug, "route": spec.route, **params, "covariates": used,
                           "assumptions": assumptions, "model": spec.description,
                           "sources": list(spec.sources)}
    if spec.route == "iv":
        out["ka_per_h"] = None
    return out


def one_compartment(pk: dict[str, Any]) -> OneCompartment:
    return OneCompartment(cl_l_h=pk["cl_l_h"], v_l=pk["v_l"], ka_per_h=pk.get("ka_per_h"), f=pk.get("f", 1.0))
