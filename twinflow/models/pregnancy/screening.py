"""The Fetal Medicine Foundation (FMF) competing-risks model for pre-eclampsia at 11-13 weeks.

Every pregnancy is assumed to deliver with pre-eclampsia (PE) at some gestational age ``g``
(weeks) if nothing else happened first; whether it does so before a given ``G`` depends on the
competition with delivery for other reasons.  The model, exactly as published:

* **prior** (Wright et al., Am J Obstet Gynecol 2015;213:62.e1): ``g ~ Normal(mu, 6.8833)``
  with ``mu`` from maternal factors (:func:`prior_mean`); inputs truncated first (age 12-55 y,
  weight 34-190 kg, height 127-198 cm, previous GA 24-42 weeks, interval 0.25-15 years);
* **medians** (Tan et al., Ultrasound Obstet Gynecol 2018;52:186, Appendix S1): log10 of the
  expected MAP, mean uterine-artery PI and PlGF (by analyser) from gestational age at
  measurement and maternal factors (:func:`medians`); MoM = measured / expected;
* **likelihood** (Wright et al., AJOG 2020;223:12; covariances in Rolnik et al., N Engl J Med
  2017;377:613, supplementary appendix): the vector of log10 MoMs of the measured markers is
  multivariate normal with mean ``b0 + b1 g`` per marker while ``g < -b0/b1`` and 0 from there
  on, and the sub-matrix of the published covariance for the markers measured; log10 MoMs are
  truncated to +-0.1224 (MAP), +-0.4216 (UtA-PI), +-0.5655 (PlGF) before use;
* **risk** of delivery with PE before ``G`` weeks: posterior mass of ``g`` in ``[24, G)``
  divided by the posterior mass above 24 weeks.  The *prior* risk is the same ratio for the
  prior alone, ``(Phi(G) - Phi(24)) / (1 - Phi(24))`` in standardised units: the FMF online
  calculator's prior risks agree with this (all of 102 women checked), not with the plain
  ``Phi(G)`` that the reference sheet suggests (5 of 54 disagree after the calculator's
  rounding).

Numerics.  Between the points where a marker's mean line reaches zero (MAP 53.26, UtA-PI
41.18, PlGF 42.79 weeks) the log posterior density is a quadratic in ``g``: the product of the
Gaussian prior with a Gaussian likelihood whose mean is linear in ``g``.  Each piece is
therefore integrated in closed form with the normal CDF (:func:`_piece_log_mass`), in log
space, with the difference of two CDFs taken on the side of the smaller tail.  No quadrature
error: the tests compare against adaptive quadrature of the raw integrand.

Departures from the papers, following the FMF online calculator (documented in
``docs/pregnancy-model.md``): the SLE/APS term of the prior is applied only when *both* are
present (``sle_aps="both"``, the default; ``"either"`` follows the papers' wording); for the
MoMs, weight is capped at 130 kg for MAP and UtA-PI and at 128 kg for PlGF, and the
interpregnancy interval is limited to 0.25-20 years.  The 128 kg cap is not published: it is
what the calculator's PlGF MoMs imply (34 of 36 women above 128 kg agree to the 3 decimals it
shows with a 128 kg cap, none with 130 kg or no cap).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable

import numpy as np
from scipy.special import log_ndtr

# ----------------------------------------------------------------------------- constants
ETHNICITIES = ("white", "black", "south_asian", "east_asian", "mixed")
CONCEPTIONS = ("spontaneous", "ovulation_induction", "ivf")
DIABETES = ("none", "type1", "type2", "type2_insulin")
PLGF_ASSAYS = ("delfia", "kryptor", "cobas")
MARKERS = ("map", "uta_pi", "plgf")

PRIOR_SD_WEEKS = 6.8833
PRIOR_INTERCEPT = 54.3637
PRIOR_TRUNCATION = {"age_years": (12.0, 55.0), "weight_kg": (34.0, 190.0), "height_cm": (127.0, 198.0),
                    "previous_ga_weeks": (24.0, 42.0), "interval_years": (0.25, 15.0)}
MOM_WEIGHT_CAP_KG = 130.0
PLGF_WEIGHT_CAP_KG = 128.0
MOM_INTERVAL_LIMITS = (0.25, 20.0)

#: mean of log10 MoM given g: b0 + b1 g while g < -b0/b1, else 0 (MAP, UtA-PI, PlGF)
LIKELIHOOD_B0 = np.array([0.088997, 0.5861, -0.92352])
LIKELIHOOD_B1 = np.array([-0.0016711, -0.014233, 0.021584])
COVARIANCE = np.array([[0.00141396, -0.0002726, -0.0001907],
                       [-0.0002726, 0.01630906, -0.0034539],
                       [-0.0001907, -0.0034539, 0.03147225]])
LOG10_MOM_LIMITS = np.array([0.12240759, 0.42161519, 0.56550992])
LOWER_GA_WEEKS = 24.0
#: first-trimester window of the medians (days): 11+0 to 14+1 weeks, as the FMF calculator
GA_WINDOW_DAYS = (77.0, 99.0)
RISK_HORIZONS = (32.0, 34.0, 37.0)
TERM_WEEKS = (37.0, 42.0)
DEFAULT_CUTOFF = 1.0 / 100.0

ASPIRIN_ADVICE = ("aspirin 150 mg every night from before 16 weeks (ideally from 11-14 weeks) until 36 weeks "
                  "(ASPRE: preterm PE odds ratio 0.38, 95 % CI 0.20-0.74)")


@dataclass(frozen=True)
class Maternal:
    """Maternal characteristics and history (units in the names)."""
    age_years: float
    weight_kg: float
    height_cm: float
    ethnicity: str = "white"
    smoker: bool = False
    conception: str = "spontaneous"
    chronic_hypertension: bool = False
    diabetes: str = "none"
    sle: bool = False
    aps: bool = False
    mother_had_pe: bool = False
    parous: bool = False
    previous_pe: bool = False
    previous_ga_weeks: float | None = None
    interval_years: float | None = None

    def __post_init__(self):
        for name, allowed in (("ethnicity", ETHNICITIES), ("conception", CONCEPTIONS), ("diabetes", DIABETES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("age_years", "weight_kg", "height_cm"):
            v = getattr(self, name)
            if v is None or not math.isfinite(float(v)) or float(v) <= 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if self.parous:
            if self.previous_ga_weeks is None or not math.isfinite(float(self.previous_ga_weeks)):
                raise ValueError("a parous woman needs previous_ga_weeks (gestational age at the previous delivery)")
            if not self.previous_pe and (self.interval_years is None or not math.isfinite(float(self.interval_years))
                                         or float(self.interval_years) <= 0):
                raise ValueError("a parous woman without previous PE needs interval_years > 0 "
                                 "(previous delivery to the last menstrual period of this pregnancy)")
        elif self.previous_pe:
            raise ValueError("previous_pe is set but the woman is not parous")

    @property
    def diabetic(self) -> bool:
        return self.diabetes != "none"


@dataclass(frozen=True)
class Markers:
    """Biomarkers at the first-trimester visit; ``None`` = not measured.

    ``ga_weeks`` is the gestational age at the examination; ``biophysical_ga_weeks`` (MAP and
    UtA-PI) and ``biochemical_ga_weeks`` (blood sample) default to it.  ``plgf_mom`` (a MoM
    reported by the laboratory) is used instead of ``plgf_pg_ml`` when given.
    """
    ga_weeks: float
    map_mmhg: float | None = None
    uta_pi: float | None = None
    plgf_pg_ml: float | None = None
    plgf_assay: str | None = None
    plgf_mom: float | None = None
    biophysical_ga_weeks: float | None = None
    biochemical_ga_weeks: float | None = None

    def __post_init__(self):
        for name in ("map_mmhg", "uta_pi", "plgf_pg_ml", "plgf_mom"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(float(v)) or float(v) <= 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if self.plgf_pg_ml is not None and self.plgf_mom is None and self.plgf_assay not in PLGF_ASSAYS:
            raise ValueError(f"PlGF needs its analyser: plgf_assay one of {', '.join(PLGF_ASSAYS)}, "
                             f"got {self.plgf_assay!r}")

    @property
    def biophysical_ga(self) -> float:
        return self.ga_weeks if self.biophysical_ga_weeks is None else self.biophysical_ga_weeks

    @property
    def biochemical_ga(self) -> float:
        return self.ga_weeks if self.biochemical_ga_weeks is None else self.biochemical_ga_weeks


def _clip(v: float, lo: float, hi: float) -> float:
    return min(max(float(v), lo), hi)


# ----------------------------------------------------------------------------- prior
def prior_mean(m: Maternal, *, sle_aps: str = "both") -> float:
    """Mean (weeks) of the prior gestational age at delivery with PE (Wright 2015)."""
    t = PRIOR_TRUNCATION
    age = _clip(m.age_years, *t["age_years"])
    height = _clip(m.height_cm, *t["height_cm"])
    weight = _clip(m.weight_kg, *t["weight_kg"])
    mu = PRIOR_INTERCEPT
    if age >= 35.0:
        mu += -0.206886 * (age - 35.0)
    mu += 0.11711 * (height - 164.0)
    mu += {"black": -2.6786, "south_asian": -1.129}.get(m.ethnicity, 0.0)
    if m.chronic_hypertension:
        mu += -7.2897
    if (m.sle and m.aps) if sle_aps == "both" else (m.sle or m.aps):
        mu += -3.0519
    if m.conception == "ivf":
        mu += -1.6327
    if m.parous:
        prev_ga = _clip(m.previous_ga_weeks, *t["previous_ga_weeks"])
        if m.previous_pe:
            mu += -8.1667 + 0.0271988 * (prev_ga - 24.0) ** 2
        else:
            iv = _clip(m.interval_years, *t["interval_years"])
            mu += -4.335 - 4.15137651 / iv + 9.21473572 / math.sqrt(iv) + 0.01549673 * (prev_ga - 24.0) ** 2
    if not m.chronic_hypertension:
        mu += -0.0694096 * (weight - 69.0)
        if m.mother_had_pe:
            mu += -1.7154
        if m.diabetic:
            mu += -3.3899
    return mu


def prior_risk(m: Maternal, ga_weeks: float = 37.0, *, sle_aps: str = "both") -> float:
    """Prior risk of delivery with PE before ``ga_weeks`` (given delivery with PE after 24 weeks):
    ``(Phi(zG) - Phi(z24)) / (1 - Phi(z24))``, ``z = (g - mu) / sigma``."""
    return Posterior.build(prior_mean(m, sle_aps=sle_aps), {}).risk(ga_weeks)


# ----------------------------------------------------------------------------- medians
def _days(ga_weeks: float) -> float:
    return float(ga_weeks) * 7.0 - 77.0


def median_map(m: Maternal, ga_weeks: float) -> float:
    """Expected MAP (mmHg) of an unaffected pregnancy (Tan 2018, Appendix S1)."""
    d = _days(ga_weeks)
    w = min(float(m.weight_kg), MOM_WEIGHT_CAP_KG) - 69.0
    h = float(m.height_cm) - 164.0
    y = 1.9364 + 0.000428017 * d - 0.000028811 * d * d + 0.0012053 * w - 0.00000928 * w * w - 0.00018157 * h
    if m.ethnicity == "black":
        y += -0.00393
    if m.smoker:
        y += -0.00864
    if m.chronic_hypertension:
        y += 0.05363 - 0.00023975 * w
    if m.diabetic:                       # type 1 and type 2 share the coefficient 0.00437
        y += 0.00437
    if m.mother_had_pe:
        y += 0.00624
    if m.parous:
        if m.previous_pe:
            y += 0.00857
        else:
            y += -0.00663 + 0.00082639 * (_clip(m.interval_years, *MOM_INTERVAL_LIMITS) - 2.0)
    return 10.0 ** y


def median_uta_pi(m: Maternal, ga_weeks: float) -> float:
    """Expected mean uterine-artery PI of an unaffected pregnancy (Tan 2018, Appendix S1)."""
    d = _days(ga_weeks)
    w = min(float(m.weight_kg), MOM_WEIGHT_CAP_KG) - 69.0
    a = float(m.age_years) - 35.0
    y = 0.26457 - 0.004838365 * d - 0.00087443 * w + 0.00000733 * w * w - 0.00064175 * a
    y += {"black": 0.02162, "east_asian": 0.00763, "mixed": 0.01199}.get(m.ethnicity, 0.0)
    if m.diabetes == "type1":
        y += -0.02749
    if m.parous:
        y += 0.00965 if m.previous_pe else -0.00295
    return 10.0 ** y


PLGF_INTERCEPT = {"delfia": 1.332959332, "kryptor": 1.430615169, "cobas": 1.542535524}


def median_plgf(m: Maternal, ga_weeks: float, assay: str) -> float:
    """Expected PlGF (pg/mL) on analyser ``assay`` (Tan 2018, Appendix S1)."""
    if assay not in PLGF_INTERCEPT:
        raise ValueError(f"unknown PlGF analyser {assay!r} (known: {', '.join(PLGF_ASSAYS)})")
    d = _days(ga_weeks)
    w = min(float(m.weight_kg), PLGF_WEIGHT_CAP_KG) - 69.0
    a = float(m.age_years) - 35.0
    y = PLGF_INTERCEPT[assay] + 0.012263018 * d + 0.000149743 * d * d - 0.001682761 * w + 0.00000878 * w * w \
        + 0.002174191 * a
    y += {"black": 0.193561059, "south_asian": 0.072679108, "east_asian": 0.034550109,
          "mixed": 0.079010576}.get(m.ethnicity, 0.0)
    if m.smoker:
        y += 0.160836176
    if m.diabetes == "type1":
        y += -0.029630891
    if m.diabetes == "type2_insulin":
        y += -0.039984195
    if m.conception == "ivf":
        y += -0.022250585
    if m.parous and not m.previous_pe:
        y += 0.02075005
    return 10.0 ** y


def moms(m: Maternal, k: Markers) -> dict[str, float | None]:
    """Multiples of the median of the measured markers (None where not measured)."""
    out: dict[str, float | None] = {"map": None, "uta_pi": None, "plgf": None}
    if k.map_mmhg is not None:
        out["map"] = float(k.map_mmhg) / median_map(m, k.biophysical_ga)
    if k.uta_pi is not None:
        out["uta_pi"] = float(k.uta_pi) / median_uta_pi(m, k.biophysical_ga)
    if k.plgf_mom is not None:
        out["plgf"] = float(k.plgf_mom)
    elif k.plgf_pg_ml is not None:
        out["plgf"] = float(k.plgf_pg_ml) / median_plgf(m, k.biochemical_ga, k.plgf_assay)
    return out


# ----------------------------------------------------------------------------- posterior
def _log_diff_ndtr(z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
    """log(Phi(z2) - Phi(z1)) elementwise for z1 < z2 (z2 may be +inf), without cancellation:
    in the upper tail as log(Phi(-z1) - Phi(-z2))."""
    z1, z2 = np.broadcast_arrays(np.asarray(z1, float), np.asarray(z2, float))
    upper = z1 > 0.0
    a = np.where(upper, log_ndtr(-z1), log_ndtr(z2))
    b = np.where(upper, log_ndtr(-z2), log_ndtr(z1))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a + np.log1p(-np.exp(b - a))
    return np.where(z2 > z1, np.where(np.isneginf(b), a, out), -np.inf)


def _breakpoints(idx: list[int]) -> list[float]:
    return sorted({float(-LIKELIHOOD_B0[i] / LIKELIHOOD_B1[i]) for i in idx})


def log_mass(mu: np.ndarray, x: np.ndarray, idx: list[int], lo: float, hi: float,
             sd: float = PRIOR_SD_WEEKS) -> np.ndarray:
    """log of the unnormalised posterior mass of ``g`` in ``[lo, hi)`` for ``n`` women.

    ``mu`` (n,) prior means; ``x`` (n, len(idx)) truncated log10 MoMs of the markers ``idx``
    (indices into :data:`MARKERS`), all women measured on the same markers.  The integrand

        exp(-(x - a - b g)' P (x - a - b g)/2 - (g - mu)^2 / (2 sd^2))

    is, on each piece between the likelihood's breakpoints, ``exp(-(A g^2 - 2 B g + C)/2)``;
    completing the square gives ``exp(-(C - B^2/A)/2) sqrt(2 pi/A) [Phi(...) - Phi(...)]``.
    """
    mu = np.atleast_1d(np.asarray(mu, float))
    x = np.asarray(x, float).reshape(mu.size, len(idx))
    prec = np.linalg.inv(COVARIANCE[np.ix_(idx, idx)]) if idx else np.zeros((0, 0))
    if hi <= lo:
        return np.full(mu.size, -np.inf)
    edges = [lo] + [c for c in _breakpoints(idx) if lo < c < hi] + [hi]
    parts = []
    for l, h in zip(edges[:-1], edges[1:]):
        mid = 0.5 * (l + h) if math.isfinite(h) else l + 1.0
        b0 = LIKELIHOOD_B0[idx] if idx else np.zeros(0)
        b1 = LIKELIHOOD_B1[idx] if idx else np.zeros(0)
        active = mid < -b0 / b1 if idx else np.zeros(0, bool)
        a, b = np.where(active, b0, 0.0), np.where(active, b1, 0.0)
        r = x - a[None, :]
        A = float(b @ prec @ b) + 1.0 / sd ** 2
        B = r @ (prec @ b) + mu / sd ** 2
        C = np.einsum("ni,ij,nj->n", r, prec, r) + mu * mu / sd ** 2
        mode, s = B / A, math.sqrt(A)
        zhi = (h - mode) * s if math.isfinite(h) else np.full(mu.size, np.inf)
        parts.append(-0.5 * (C - B * B / A) + 0.5 * math.log(2.0 * math.pi / A)
                     + _log_diff_ndtr((l - mode) * s, zhi))
    return np.logaddexp.reduce(np.vstack(parts), axis=0)


def truncate_log10_moms(x: np.ndarray, idx: list[int]) -> np.ndarray:
    lim = LOG10_MOM_LIMITS[idx] if idx else np.zeros(0)
    return np.clip(np.asarray(x, float), -lim, lim)


def risks_many(mu: np.ndarray, log10_moms: np.ndarray, horizons: Iterable[float] = RISK_HORIZONS,
               lower: float = LOWER_GA_WEEKS) -> np.ndarray:
    """Risks of delivery with PE before each horizon for ``n`` women (vectorised).

    ``log10_moms`` (n, 3): MAP, UtA-PI, PlGF, NaN where not measured (un-truncated).
    Returns (n, len(horizons)).
    """
    mu = np.atleast_1d(np.asarray(mu, float))
    lx = np.asarray(log10_moms, float).reshape(mu.size, len(MARKERS))
    horizons = list(horizons)
    out = np.empty((mu.size, len(horizons)))
    pattern = ~np.isnan(lx)
    for pat in sorted({tuple(p) for p in pattern.tolist()}):
        rows = np.nonzero((pattern == np.array(pat)).all(axis=1))[0]
        idx = [i for i, on in enumerate(pat) if on]
        x = truncate_log10_moms(lx[np.ix_(rows, idx)], idx)
        total = log_mass(mu[rows], x, idx, lower, math.inf)
        for j, G in enumerate(horizons):
            out[rows, j] = np.exp(log_mass(mu[rows], x, idx, lower, G) - total) if G > lower else 0.0
    return out


@dataclass
class Posterior:
    """Posterior of the gestational age at delivery with PE given the measured markers."""
    mu: float
    sd: float
    log10_mom: dict[str, float]                       # truncated values used in the likelihood
    _x: np.ndarray = field(repr=False, default=None)
    _idx: list[int] = field(repr=False, default=None)

    @classmethod
    def build(cls, mu: float, log10_moms: dict[str, float | None], sd: float = PRIOR_SD_WEEKS) -> "Posterior":
        idx = [i for i, k in enumerate(MARKERS) if log10_moms.get(k) is not None]
        x = truncate_log10_moms(np.array([float(log10_moms[MARKERS[i]]) for i in idx]), idx)
        return cls(mu=float(mu), sd=float(sd), log10_mom={MARKERS[i]: float(v) for i, v in zip(idx, x)},
                   _x=x, _idx=idx)

    def log_mass(self, lo: float, hi: float) -> float:
        """log of the unnormalised posterior mass of ``g`` in ``[lo, hi)`` (weeks)."""
        return float(log_mass(np.array([self.mu]), self._x[None, :], self._idx, lo, hi, self.sd)[0])

    def risk(self, ga_weeks: float, lower: float = LOWER_GA_WEEKS) -> float:
        """P(lower <= g < ga_weeks | markers) / P(g >= lower | markers)."""
        if ga_weeks <= lower:
            return 0.0
        return float(math.exp(self.log_mass(lower, ga_weeks) - self.log_mass(lower, math.inf)))

    def risk_between(self, a: float, b: float, lower: float = LOWER_GA_WEEKS) -> float:
        return float(math.exp(self.log_mass(max(a, lower), b) - self.log_mass(lower, math.inf)))

    def density(self, g: np.ndarray) -> np.ndarray:
        """Unnormalised posterior density at ``g`` (for plots)."""
        g = np.atleast_1d(np.asarray(g, float))
        out = np.exp(-0.5 * ((g - self.mu) / self.sd) ** 2)
        if self._idx:
            prec = np.linalg.inv(COVARIANCE[np.ix_(self._idx, self._idx)])
            b0 = LIKELIHOOD_B0[self._idx][None, :]
            b1 = LIKELIHOOD_B1[self._idx][None, :]
            mean = np.where(g[:, None] < -b0 / b1, b0 + b1 * g[:, None], 0.0)
            r = self._x[None, :] - mean
            out = out * np.exp(-0.5 * np.einsum("ni,ij,nj->n", r, prec, r))
        return out


@dataclass
class ScreeningResult:
    prior_mean_weeks: float
    moms: dict[str, float | None]                     # as computed (not truncated)
    log10_moms_used: dict[str, float]                 # truncated, in the likelihood
    prior_risk: dict[str, float]                      # "32", "34", "37": prior alone, truncated at 24 weeks
    risk: dict[str, float]                            # "32", "34", "37", "term"
    cutoff: float
    screen_positive: bool
    recommendation: str
    markers_used: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def screen(m: Maternal, k: Markers | None = None, *, cutoff: float = DEFAULT_CUTOFF,
           sle_aps: str = "both") -> ScreeningResult:
    """Combined first-trimester screening: MoMs, prior and posterior risks, screen result.

    Screen-positive when the risk of delivery with PE before 37 weeks is at least ``cutoff``
    (default 1 in 100, as in ASPRE).
    """
    mu = prior_mean(m, sle_aps=sle_aps)
    mm = moms(m, k) if k is not None else {"map": None, "uta_pi": None, "plgf": None}
    post = Posterior.build(mu, {key: (None if v is None else math.log10(v)) for key, v in mm.items()})
    lx = np.array([[np.nan if mm[key] is None else math.log10(mm[key]) for key in MARKERS], [np.nan] * 3])
    horizons = list(RISK_HORIZONS) + [TERM_WEEKS[1]]
    post_r, prior_r = risks_many(np.array([mu, mu]), lx, horizons)
    risk = {f"{int(G)}": float(v) for G, v in zip(RISK_HORIZONS, post_r)}
    risk["term"] = float(post_r[-1] - risk["37"])
    positive = risk["37"] >= cutoff
    rec = (f"screen-positive (risk of PE before 37 weeks 1 in {max(1, round(1 / risk['37']))} >= 1 in "
           f"{round(1 / cutoff)}): offer {ASPIRIN_ADVICE}") if positive else \
        f"screen-negative (risk of PE before 37 weeks below 1 in {round(1 / cutoff)}): routine care"
    return ScreeningResult(prior_mean_weeks=mu, moms=mm, log10_moms_used=post.log10_mom,
                           prior_risk={f"{int(G)}": float(v) for G, v in zip(RISK_HORIZONS, prior_r)},
                           risk=risk, cutoff=cutoff, screen_positive=bool(positive), recommendation=rec,
                           markers_used=list(post.log10_mom))


def with_markers(m: Maternal, **kw) -> Maternal:
    return replace(m, **kw)


# ----------------------------------------------------------------------------- sFlt-1/PlGF
SFLT_PLGF_RULE_OUT = 38.0


def sflt_plgf_interpretation(sflt_pg_ml: float, plgf_pg_ml: float) -> dict[str, Any]:
    """The sFlt-1/PlGF ratio (Zeisler et al., N Engl J Med 2016; from 24+0 weeks in suspected
    PE): <= 38 rules out PE within one week (negative predictive value 99.3 %)."""
    ratio = float(sflt_pg_ml) / float(plgf_pg_ml)
    return {"ratio": ratio, "cutoff": SFLT_PLGF_RULE_OUT, "rule_out_1_week": ratio <= SFLT_PLGF_RULE_OUT,
            "source": "Zeisler et al., N Engl J Med 2016;374:13 (PROGNOSIS): NPV 99.3 % for PE within 1 week"}
