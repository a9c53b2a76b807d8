"""Metoprolol body PK (CYP2D6-phenotype dependent) -> effect site -> Emax effects on the heart.

PK: oral immediate-release metoprolol tartrate, linear one-compartment model with first-order
absorption in *apparent* (``/F``) parameters (:class:`twinflow.pkpd.compartment.OneCompartment`
with ``f = 1``)::

    CL/F = CL/F_NM / auc_fold,     V/F = V/F_NM * t_half_fold / auc_fold

so that, against a normal metaboliser, the AUC of a dose is ``auc_fold`` times larger and the
elimination half-life ``t_half_fold`` times longer -- the two quantities the CYP2D6 meta-analysis
reports (Blake et al. 2013, Clin Pharmacol Ther 94:394, n = 264, single oral IR doses:
PM vs EM 4.9-fold AUC and 2.3-fold t1/2; UM vs PM 13-fold AUC and 2.6-fold t1/2).  Less
first-pass extraction in PMs (higher ``F``) is inside the apparent parameters.

Effect site (hysteresis): ``dCe/dt = ke0 (C - Ce)``, solved analytically for the oral
one-compartment input, doses superposed.

PD (beta-1 blockade, inhibitory Emax, Hill 1, on ``Ce``)::

    HR      = HR0      * (1 - Imax_hr  * Ce / (Ce + EC50))
    E_act   = E_act0   * (1 - Imax_ino * Ce / (Ce + EC50))   (active elastance Emax - Emin of
                                                             both ventricles: negative inotropy)

All numbers and their sources are in :data:`NM_PK`, :data:`PHENOTYPES`, :data:`DEFAULT_PD`
and ``docs/cardiac-model.md``.  CYP2D6 copy number (``*1xN``/``*2xN`` duplications), the
``*5`` whole-gene deletion and ``CYP2D6-2D7`` hybrids (``*13``, ``*36``, ...) are not
visible in a VCF of small variants, so a phenotype derived from a VCF alone can be wrong in
either direction (a ``*5`` carrier called NM instead of IM, a duplication carrier called NM
instead of UM): the twin records this as an assumption whenever the phenotype came from
a VCF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twinflow.pkpd.compartment import OneCompartment


@dataclass(frozen=True)
class MetoprololPK:
    """Apparent oral PK of racemic metoprolol in a normal (extensive) metaboliser."""
    cl_f_l_h: float = 108.0     # CL/F: systemic CL ~54 L/h (0.9 L/min) / F 0.5 (label, Regardh & Johnsson 1980)
    t_half_h: float = 3.5       # label: 3-4 h in extensive metabolisers
    ka_per_h: float = 1.0       # tmax ~1.5-2 h for IR tablets
    ke0_per_h: float = 1.0      # effect-site equilibration (t1/2,ke0 0.7 h; assumption)

    @property
    def v_f_l(self) -> float:
        return self.cl_f_l_h * self.t_half_h / math.log(2.0)


NM_PK = MetoprololPK()


@dataclass(frozen=True)
class Phenotype:
    name: str
    auc_fold: float      # AUC relative to a normal metaboliser
    t_half_fold: float   # elimination half-life relative to a normal metaboliser
    source: str


#: CYP2D6 phenotype -> PK multipliers relative to normal metabolisers (NM = EM in older papers).
PHENOTYPES = {
    "Normal Metabolizer": Phenotype("Normal Metabolizer", 1.0, 1.0, "reference"),
    "Poor Metabolizer": Phenotype(
        "Poor Metabolizer", 4.9, 2.3, "Blake et al. 2013 meta-analysis: PM vs EM AUC 4.9-fold, t1/2 2.3-fold"),
    "Ultrarapid Metabolizer": Phenotype(
        "Ultrarapid Metabolizer", 4.9 / 13.0, 2.3 / 2.6,
        "Blake et al. 2013: UM vs PM AUC 13-fold, t1/2 2.6-fold, combined with the PM vs EM ratios"),
    "Intermediate Metabolizer": Phenotype(
        "Intermediate Metabolizer", math.sqrt(4.9), math.sqrt(2.3),
        "assumption: geometric midpoint between NM and PM (IM exposure lies between them in "
        "Blake et al. 2013 and the DPWG metoprolol guideline; pooled IM ratios vary by allele)"),
}
_ALIASES = {
    "pm": "Poor Metabolizer", "poor": "Poor Metabolizer", "poor metaboliser": "Poor Metabolizer",
    "im": "Intermediate Metabolizer", "intermediate": "Intermediate Metabolizer",
    "intermediate metaboliser": "Intermediate Metabolizer",
    "nm": "Normal Metabolizer", "normal": "Normal Metabolizer", "normal metaboliser": "Normal Metabolizer",
    "em": "Normal Metabolizer", "extensive metabolizer": "Normal Metabolizer",
    "extensive metaboliser": "Normal Metabolizer",
    "um": "Ultrarapid Metabolizer", "ultrarapid": "Ultrarapid Metabolizer",
    "ultrarapid metaboliser": "Ultrarapid Metabolizer", "ultra-rapid metabolizer": "Ultrarapid Metabolizer",
}


def resolve_phenotype(phenotype: str | None) -> tuple[Phenotype, list[str]]:
    """Map a CYP2D6 phenotype string to multipliers; unknown/indeterminate -> NM + a note."""
    notes: list[str] = []
    key = (phenotype or "").strip()
    canon = None
    for name in PHENOTYPES:
        if key.lower() == name.lower():
            canon = name
    if canon is None:
        canon = _ALIASES.get(key.lower())
    if canon is None:
        shown = phenotype if phenotype else "missing"
        notes.append(f"CYP2D6 phenotype {shown!r} is not a determinate phenotype: metoprolol PK uses "
                     "the population default (Normal Metabolizer)")
        canon = "Normal Metabolizer"
    return PHENOTYPES[canon], notes


def pk_model(phenotype: str | None = "Normal Metabolizer", base: MetoprololPK = NM_PK) -> OneCompartment:
    ph, _ = resolve_phenotype(phenotype)
    cl = base.cl_f_l_h / ph.auc_fold
    v = base.v_f_l * ph.t_half_fold / ph.auc_fold
    return OneCompartment(cl_l_h=cl, v_l=v, ka_per_h=base.ka_per_h, f=1.0)


def effect_site_concentration(pk: OneCompartment, ke0_per_h: float, t_h, dose_times_h, doses_mg) -> np.ndarray:
    """Effect-site concentration (mg/L) of the oral one-compartment model, exact."""
    t = np.atleast_1d(np.asarray(t_h, float))[:, None]
    tau = t - np.asarray(dose_times_h, float)[None, :]
    pos = tau >= 0
    s = np.where(pos, tau, 0.0)
    ka, ke, k0 = pk.ka_per_h, pk.ke_per_h, ke0_per_h
    # guard against equal rate constants (removable singularity)
    if abs(k0 - ke) < 1e-9 * k0:
        k0 = k0 * (1 + 1e-6)
    if abs(k0 - ka) < 1e-9 * k0:
        k0 = k0 * (1 + 1e-6)
    a = pk.f * ka / (pk.v_l * (ka - ke))
    ce = a * k0 * ((np.exp(-ke * s) - np.exp(-k0 * s)) / (k0 - ke)
                   - (np.exp(-ka * s) - np.exp(-k0 * s)) / (k0 - ka))
    return (np.where(pos, ce, 0.0) * np.asarray(doses_mg, float)[None, :]).sum(axis=1)


@dataclass(frozen=True)
class MetoprololPD:
    """Inhibitory Emax on resting heart rate and ventricular contractility.

    Assumptions calibrated to published resting responses (not fitted to a data set):
    100 mg bid in an NM lowers resting HR by ~20 % (~14/min from 70), the PM-vs-NM extra
    HR reduction is a few beats per minute (2020 systematic review and meta-analysis of 15
    studies, "CYP2D6 polymorphism and its impact on the clinical response to metoprolol": 3/min), and beta-1 blockade at rest lowers contractility modestly.
    """
    ec50_mg_l: float = 0.040       # 40 ng/mL racemate
    imax_hr: float = 0.30          # maximal fractional fall of resting HR
    imax_inotropy: float = 0.25    # maximal fractional fall of active ventricular elastance
    hill: float = 1.0

    def occupancy(self, ce_mg_l):
        c = np.maximum(np.asarray(ce_mg_l, float), 0.0) ** self.hill
        return c / (c + self.ec50_mg_l ** self.hill)

    def hr_factor(self, ce_mg_l):
        return 1.0 - self.imax_hr * self.occupancy(ce_mg_l)

    def inotropy_factor(self, ce_mg_l):
        return 1.0 - self.imax_inotropy * self.occupancy(ce_mg_l)


DEFAULT_PD = MetoprololPD()


@dataclass(frozen=True)
class Regimen:
    dose_mg: float
    interval_h: float = 12.0

    def dose_times(self, days: float) -> np.ndarray:
        if self.dose_mg <= 0:
            return np.zeros(0)
        return np.arange(0.0, days * 24.0 - 1e-9, self.interval_h)


def steady_state_exposure(regimen: Regimen, phenotype: str | None = "Normal Metabolizer", *,
                          days: float = 7.0, base: MetoprololPK = NM_PK, n_grid: int = 481) -> dict:
    """PK and effect-site summary over the last dosing interval after ``days`` of dosing.

    ``days`` (default 7) is > 20 PM half-lives, so the last interval is at steady state.
    Peak/trough are those of the effect-site concentration (what drives the effect) and of
    the plasma concentration; ``auc_tau`` is the exact plasma AUC over the interval.
    """
    pk = pk_model(phenotype, base)
    ph, notes = resolve_phenotype(phenotype)
    times = regimen.dose_times(days)
    doses = np.full(times.size, float(regimen.dose_mg))
    t_end = days * 24.0
    tau = regimen.interval_h
    t = np.linspace(t_end - tau, t_end, n_grid)
    if times.size == 0:
        zero = np.zeros_like(t)
        cp, ce = zero, zero
        auc = 0.0
    else:
        cp = pk.concentration(t, times, doses)
        ce = effect_site_concentration(pk, base.ke0_per_h, t, times, doses)
        auc = float(pk.exposure(t_end - tau, t_end, times, doses)[0])
    return {
        "phenotype": ph.name, "phenotype_notes": notes,
        "cl_f_l_h": pk.cl_l_h, "v_f_l": pk.v_l, "t_half_h": math.log(2) / pk.ke_per_h,
        "auc_tau_mg_h_l": auc, "cavg_mg_l": auc / tau,
        "cmax_mg_l": float(cp.max()), "cmin_mg_l": float(cp.min()),
        "ce_peak_mg_l": float(ce.max()), "ce_trough_mg_l": float(ce.min()),
        "t_h": t.tolist(), "cp_mg_l": cp.tolist(), "ce_mg_l": ce.tolist(),
    }
