"""The pregnancy twin's part of in-silico trials: first-trimester screening for preterm
pre-eclampsia (PE) and aspirin against placebo in the screen-positive women (ASPRE-like),
:class:`PregnancyTrial`.

Population (the documented choice: **published distributions**).  A screening trial needs
tens of thousands of women and a cohort's pregnancy twins are a handful, so the virtual women
are drawn from the FMF competing-risks model's own generative population
(:mod:`twinflow.models.pregnancy.population`): maternal factors from an approximate
first-trimester screening population (the mix of Tan et al. 2018), the prior gestational
age at delivery with PE ``g ~ Normal(mu, 6.8833)`` (Wright et al. 2015), log10 MoMs of MAP,
UtA-PI and PlGF from the model's likelihood (Wright et al. 2020; covariance from Rolnik et
al. 2017), a competing delivery for other reasons ``D ~ Normal(39.6, 1.6)`` weeks (at most 42),
and the risk of delivery with PE before 37 weeks that the screening computes from her
markers (:func:`twinflow.models.pregnancy.screening.risks_many`).  She has PE if
``24 <= g < D``; preterm PE if also ``g < 37``.  The cohort's twins are not resampled (each
is one woman); they are the patients the same screening model serves.

Aspirin (``regimen: {aspirin: true, odds_ratio}``) multiplies each woman's odds of preterm PE
by ``odds_ratio`` (default 0.38, the ASPRE trial's -- the same assumption as the pregnancy
twin's aspirin arm): a woman with preterm PE without aspirin keeps it on aspirin when her own
uniform draw ``u < r'/r`` (``r`` her screening risk, ``r'`` the risk at the reduced odds), so
a woman's outcomes on the two arms are coupled and aspirin never causes PE.  Term PE is
unchanged.  Because the odds ratio is an input, a replay of ASPRE reproduces it by
construction; what it tests is the screening (screen-positive rate, detection rate, the
incidence in the screen-positive women) and the trial's power at its size.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from twinflow.models.base import SourceTwin, TrialModel
from twinflow.models.pregnancy.forecast import ASPRE_OR as _ASPRE, _with_or

ASPRE_OR = _ASPRE[0]            # the point estimate (the arm's default odds ratio)


class PregnancyTrial(TrialModel):
    population_choice = (
        "Published distributions: virtual women drawn from the FMF competing-risks model's generative population "
        "(maternal mix of a first-trimester screening cohort, competing-risks prior, MoM likelihood, competing "
        "delivery), screened with the same model's risk of delivery with PE before 37 weeks.")
    population_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {"cutoff": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.01},
                       "markers": {"type": "array", "items": {"enum": ["map", "uta_pi", "plgf"]},
                                   "default": ["map", "uta_pi", "plgf"]}},
    }
    simulation_schema = {"type": "object", "additionalProperties": False, "properties": {}}
    regimen_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {"aspirin": {"type": "boolean", "default": False},
                       "odds_ratio": {"type": "number", "exclusiveMinimum": 0, "default": ASPRE_OR}},
    }
    endpoints = {
        "preterm_pe": {"kind": "binary", "unit": "", "description": "delivery with PE before 37 weeks"},
        "early_pe": {"kind": "binary", "unit": "", "description": "delivery with PE before 34 weeks"},
        "term_pe": {"kind": "binary", "unit": "", "description": "delivery with PE at or after 37 weeks"},
        "any_pe": {"kind": "binary", "unit": "", "description": "delivery with PE"},
    }
    covariates = {
        "age_years": "maternal age", "weight_kg": "weight", "ethnicity": "ethnicity", "parous": "parous",
        "previous_pe": "PE in a previous pregnancy", "chronic_hypertension": "chronic hypertension",
        "risk_pe_lt37": "screening risk of delivery with PE before 37 weeks",
        "screen_positive": "risk at or above the cutoff", "prior_mean_weeks": "mean of the competing-risks prior",
    }
    modules = ("twinflow.models.pregnancy.trial", "twinflow.models.pregnancy.population",
               "twinflow.models.pregnancy.screening")

    def assumptions(self, population: Mapping[str, Any], simulation: Mapping[str, Any]) -> list[str]:
        return [
            "maternal factors: the approximate screening-population mix of twinflow.models.pregnancy.population "
            "(Tan et al. 2018, Table 1)",
            "PE: the competing-risks model's own distributions (prior, MoM likelihood), competing delivery "
            "Normal(39.6, 1.6) weeks capped at 42",
            f"screening: risk of delivery with PE < 37 weeks from maternal factors + {', '.join(population['markers'])}; "
            f"screen positive at >= 1 in {1 / population['cutoff']:.0f} (no PAPP-A, which ASPRE's algorithm also used)",
            "aspirin: each woman's odds of preterm PE times the arm's odds ratio (an input, default ASPRE's 0.38); "
            "term PE unchanged",
        ]

    def population(self, sources: list[SourceTwin], options: Mapping[str, Any], n: int, rng: Any) -> list[dict]:
        from twinflow.models.pregnancy.population import draw
        from twinflow.models.pregnancy.screening import MARKERS, risks_many

        women, pop = draw(n, rng)
        mu, g, other, x = pop.mu, pop.g, pop.delivery, pop.log10_moms
        u = rng.random(n)
        seen = np.array([m in options["markers"] for m in MARKERS])
        xm = np.where(seen[None, :], x, np.nan)
        risk = risks_many(mu, xm, [37.0])[:, 0]
        out = []
        for i, m in enumerate(women):
            cov = {"age_years": m.age_years, "weight_kg": m.weight_kg, "ethnicity": m.ethnicity, "parous": m.parous,
                   "previous_pe": m.previous_pe, "chronic_hypertension": m.chronic_hypertension,
                   "risk_pe_lt37": float(risk[i]), "screen_positive": bool(risk[i] >= options["cutoff"]),
                   "prior_mean_weeks": float(mu[i])}
            out.append({"source": None, "covariates": cov,
                        "params": {"g_weeks": float(g[i]), "other_delivery_weeks": float(other[i]),
                                   "u_aspirin": float(u[i]), "risk_pe_lt37": float(risk[i])}})
        return out

    def simulate_virtual(self, patient: Mapping[str, Any], arm: Mapping[str, Any], options: Mapping[str, Any],
                         sources: Mapping[str, SourceTwin]) -> dict[str, Any]:
        p = patient["params"]
        g, d = p["g_weeks"], p["other_delivery_weeks"]
        pe = 24.0 <= g < d
        preterm = pe and g < 37.0
        reg = arm.get("regimen") or {}
        if preterm and reg.get("aspirin"):
            r = min(max(p["risk_pe_lt37"], 1e-12), 1 - 1e-12)
            if p["u_aspirin"] >= _with_or(r, reg.get("odds_ratio", ASPRE_OR)) / r:
                preterm = False
                pe = False
        return {"preterm_pe": preterm, "early_pe": preterm and g < 34.0, "term_pe": pe and not preterm and g >= 37.0,
                "any_pe": pe}
