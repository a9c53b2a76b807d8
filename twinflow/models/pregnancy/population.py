"""A population drawn from the competing-risks model's own distributions, to check screening.

Each woman: maternal factors from an approximate first-trimester screening population (the
mix below; documented assumptions, roughly the cohort of Tan et al. 2018, Table 1) ->
prior mean ``mu`` -> her gestational age at delivery with PE ``g ~ Normal(mu, 6.8833)`` ->
log10 MoMs ``~ MVN(m(g), Sigma)`` (the likelihood of the model) -> the risk the screening
computes from the MoMs.  Competing delivery: a woman delivers for other reasons at ``D ~
Normal(39.6, 1.6)`` weeks, at most 42 (induction for post-dates); she has PE when
``24 <= g < D``, preterm PE when also ``g < 37``.  With the screen-positive rate fixed at 10 %
the detection rates should come out near the published ones (Tan 2018, maternal factors +
MAP + UtA-PI + PlGF: 90 % of PE < 32, 75 % of PE < 37, 41 % of term PE) -- the model and the
cohort are the same only approximately, so "near" means within several percentage points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .screening import (COVARIANCE, LIKELIHOOD_B0, LIKELIHOOD_B1, PRIOR_SD_WEEKS, Maternal, prior_mean,
                        risks_many)

PUBLISHED_DR_AT_10PCT = {"pe_lt_32": 0.90, "pe_lt_37": 0.75, "pe_ge_37": 0.41}
MIX = {
    "age_mean": 31.0, "age_sd": 5.5, "weight_median_kg": 67.0, "weight_log_sd": 0.19,
    "height_mean_cm": 164.5, "height_sd_cm": 6.8,
    "ethnicity": {"white": 0.71, "black": 0.16, "south_asian": 0.07, "east_asian": 0.025, "mixed": 0.035},
    "smoker": 0.09, "ivf": 0.03, "ovulation_induction": 0.01, "chronic_hypertension": 0.013,
    "diabetes_type1": 0.004, "diabetes_type2": 0.006, "sle_and_aps": 0.002, "mother_had_pe": 0.04,
    "parous": 0.52, "previous_pe_if_parous": 0.06, "previous_ga_mean": 39.3, "previous_ga_sd": 1.8,
    "interval_median_years": 3.0, "interval_log_sd": 0.6,
    "other_delivery_mean_weeks": 39.6, "other_delivery_sd_weeks": 1.6, "other_delivery_max_weeks": 42.0,
}


@dataclass
class Population:
    mu: np.ndarray              # prior means (weeks)
    g: np.ndarray               # gestational age at delivery with PE if nothing else happened first
    delivery: np.ndarray        # delivery for other reasons (weeks)
    log10_moms: np.ndarray      # (n, 3) MAP, UtA-PI, PlGF

    @property
    def pe(self) -> np.ndarray:
        return (self.g >= 24.0) & (self.g < self.delivery)


def draw_maternal(n: int, rng: np.random.Generator) -> list[Maternal]:
    eth_names = list(MIX["ethnicity"])
    eth = rng.choice(len(eth_names), size=n, p=np.array(list(MIX["ethnicity"].values())))
    out = []
    for i in range(n):
        parous = rng.random() < MIX["parous"]
        prev_pe = parous and rng.random() < MIX["previous_pe_if_parous"]
        u = rng.random()
        conception = "ivf" if u < MIX["ivf"] else ("ovulation_induction" if u < MIX["ivf"] + MIX["ovulation_induction"]
                                                   else "spontaneous")
        v = rng.random()
        diabetes = "type1" if v < MIX["diabetes_type1"] else (
            "type2" if v < MIX["diabetes_type1"] + MIX["diabetes_type2"] else "none")
        sle_aps = rng.random() < MIX["sle_and_aps"]
        out.append(Maternal(
            age_years=float(np.clip(rng.normal(MIX["age_mean"], MIX["age_sd"]), 16, 50)),
            weight_kg=float(np.clip(MIX["weight_median_kg"] * np.exp(rng.normal(0, MIX["weight_log_sd"])), 38, 160)),
            height_cm=float(np.clip(rng.normal(MIX["height_mean_cm"], MIX["height_sd_cm"]), 140, 190)),
            ethnicity=eth_names[eth[i]], smoker=bool(rng.random() < MIX["smoker"]), conception=conception,
            chronic_hypertension=bool(rng.random() < MIX["chronic_hypertension"]), diabetes=diabetes,
            sle=sle_aps, aps=sle_aps, mother_had_pe=bool(rng.random() < MIX["mother_had_pe"]),
            parous=parous, previous_pe=prev_pe,
            previous_ga_weeks=float(np.clip(rng.normal(MIX["previous_ga_mean"], MIX["previous_ga_sd"]), 24, 42))
            if parous else None,
            interval_years=float(MIX["interval_median_years"] * np.exp(rng.normal(0, MIX["interval_log_sd"])))
            if parous and not prev_pe else None))
    return out


def marker_mean(g: np.ndarray) -> np.ndarray:
    """Mean log10 MoM (n, 3) of the likelihood at gestational ages ``g``."""
    g = np.asarray(g, float)[:, None]
    return np.where(g < -LIKELIHOOD_B0 / LIKELIHOOD_B1, LIKELIHOOD_B0 + LIKELIHOOD_B1 * g, 0.0)


def draw(n: int, rng: np.random.Generator) -> tuple[list[Maternal], Population]:
    """``n`` women (maternal factors) and their pregnancies drawn with ``rng`` from the model's
    own distributions."""
    women = draw_maternal(n, rng)
    mu = np.array([prior_mean(m) for m in women])
    g = rng.normal(mu, PRIOR_SD_WEEKS)
    delivery = np.minimum(rng.normal(MIX["other_delivery_mean_weeks"], MIX["other_delivery_sd_weeks"], n),
                          MIX["other_delivery_max_weeks"])
    x = marker_mean(g) + rng.multivariate_normal(np.zeros(3), COVARIANCE, size=n)
    return women, Population(mu=mu, g=g, delivery=delivery, log10_moms=x)


def simulate(n: int, seed: int = 0) -> Population:
    return draw(n, np.random.default_rng(seed))[1]


def performance(pop: Population, screen_positive_rate: float = 0.10, markers=(True, True, True)) -> dict:
    """Detection rates at a fixed screen-positive rate, ranking women by their risk before 37
    weeks computed from the given marker subset (MAP, UtA-PI, PlGF)."""
    x = pop.log10_moms.copy()
    x[:, ~np.array(markers, bool)] = np.nan
    risk = risks_many(pop.mu, x, [37.0])[:, 0]
    thr = float(np.quantile(risk, 1.0 - screen_positive_rate))
    pos = risk >= thr
    pe = pop.pe
    groups = {"pe_lt_32": pe & (pop.g < 32), "pe_lt_37": pe & (pop.g < 37), "pe_ge_37": pe & (pop.g >= 37)}
    out = {"n": int(pop.mu.size), "screen_positive_rate": float(pos.mean()), "risk_threshold_37": thr,
           "screen_positive_rate_at_1_in_100": float((risk >= 0.01).mean())}
    for k, sel in groups.items():
        out[f"n_{k}"] = int(sel.sum())
        out[f"dr_{k}"] = float(pos[sel].mean()) if sel.any() else float("nan")
        out[f"dr_{k}_at_1_in_100"] = float((risk[sel] >= 0.01).mean()) if sel.any() else float("nan")
    return out
