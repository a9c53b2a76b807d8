"""Linear one-compartment pharmacokinetics with analytic concentrations and exposures.

Model (per dose ``D`` given at ``t_d``, bioavailability ``F``, volume ``V`` [L], clearance
``CL`` [L/h], elimination rate ``ke = CL / V`` [1/h]):

* IV bolus:              ``C(t) = F D / V * exp(-ke (t - t_d))``
* first-order absorption (oral, rate ``ka`` [1/h], ``ka != ke``):
  ``C(t) = F D ka / (V (ka - ke)) * (exp(-ke (t - t_d)) - exp(-ka (t - t_d)))``

Doses superpose (the model is linear).  :func:`exposure` returns the exact integral of the
concentration over a time window (mg*h/L), which lets a tissue model that steps in days
apply a drug effect driven by an hours-scale PK without resolving it on its own grid.
Times are in hours here; callers convert.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneCompartment:
    cl_l_h: float            # clearance
    v_l: float               # volume of distribution
    ka_per_h: float | None = None   # absorption rate; None = IV bolus
    f: float = 1.0           # bioavailability

    @property
    def ke_per_h(self) -> float:
        return self.cl_l_h / self.v_l

    def _unit_conc(self, tau: np.ndarray) -> np.ndarray:
        """Concentration (mg/L) per mg of dose, ``tau`` hours after the dose (0 before)."""
        tau = np.asarray(tau, dtype=float)
        ke = self.ke_per_h
        pos = tau >= 0
        t = np.where(pos, tau, 0.0)
        if self.ka_per_h is None:
            c = self.f / self.v_l * np.exp(-ke * t)
        else:
            ka = self.ka_per_h
            c = self.f * ka / (self.v_l * (ka - ke)) * (np.exp(-ke * t) - np.exp(-ka * t))
        return np.where(pos, c, 0.0)

    def _unit_cum(self, tau: np.ndarray) -> np.ndarray:
        """Integral of :meth:`_unit_conc` from the dose time to ``tau`` (mg*h/L per mg)."""
        tau = np.asarray(tau, dtype=float)
        ke = self.ke_per_h
        t = np.maximum(tau, 0.0)
        if self.ka_per_h is None:
            return self.f / self.v_l * (1.0 - np.exp(-ke * t)) / ke
        ka = self.ka_per_h
        return self.f * ka / (self.v_l * (ka - ke)) * ((1 - np.exp(-ke * t)) / ke - (1 - np.exp(-ka * t)) / ka)

    def concentration(self, t_h: np.ndarray, dose_times_h: np.ndarray, doses_mg: np.ndarray) -> np.ndarray:
        t_h = np.atleast_1d(np.asarray(t_h, dtype=float))
        dt = t_h[:, None] - np.asarray(dose_times_h, dtype=float)[None, :]
        return (self._unit_conc(dt) * np.asarray(doses_mg, dtype=float)[None, :]).sum(axis=1)

    def exposure(self, t0_h: np.ndarray, t1_h: np.ndarray, dose_times_h: np.ndarray,
                 doses_mg: np.ndarray) -> np.ndarray:
        """Exact AUC (mg*h/L) over each window ``[t0, t1]``."""
        t0 = np.atleast_1d(np.asarray(t0_h, dtype=float))[:, None]
        t1 = np.atleast_1d(np.asarray(t1_h, dtype=float))[:, None]
        td = np.asarray(dose_times_h, dtype=float)[None, :]
        d = np.asarray(doses_mg, dtype=float)[None, :]
        return ((self._unit_cum(t1 - td) - self._unit_cum(t0 - td)) * d).sum(axis=1)

    def total_auc_per_mg(self) -> float:
        """AUC from 0 to infinity of one 1 mg dose: F / CL."""
        return self.f / self.cl_l_h
