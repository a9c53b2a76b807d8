"""Laplace-approximation identifiability of calibrated parameters, shared by the 0D models.

Given the Jacobian ``J`` of the residuals (in measurement-SD units) with respect to the log
of each candidate parameter, and a vague log-normal prior of SD ``prior_log_sd``, the
posterior covariance of the log parameters is ``(J^T J + I / prior_log_sd^2)^-1``.  A
parameter is not identifiable when its posterior relative SD exceeds ``rel_sd_limit`` (the
data barely move it from the prior) or when its correlation with another candidate exceeds
``corr_limit`` in magnitude (the data inform only a combination).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def forward_jacobian(fun: Callable[[np.ndarray], np.ndarray], z: np.ndarray, f0: np.ndarray,
                     h: float) -> np.ndarray:
    """Jacobian of ``fun`` at ``z`` by forward differences of step ``h`` (``f0 = fun(z)``)."""
    J = np.empty((f0.size, z.size))
    for j in range(z.size):
        zp = z.copy()
        zp[j] += h
        J[:, j] = (fun(zp) - f0) / h
    return J


@dataclass
class Identifiability:
    singular_values: np.ndarray
    rel_sd: np.ndarray               # posterior SD of the log parameter (~ relative SD)
    corr: np.ndarray
    reasons: dict[str, list[str]]    # candidate -> why it is not identifiable ([] when it is)
    rule: str                        # the rule, in words (recorded in the twin)

    def identifiable(self) -> dict[str, bool]:
        return {c: not r for c, r in self.reasons.items()}


def laplace(J: np.ndarray, candidates, *, prior_log_sd: float, rel_sd_limit: float,
            corr_limit: float) -> Identifiability:
    J = np.asarray(J, dtype=float)
    sv = np.linalg.svd(J, compute_uv=False)
    cov = np.linalg.inv(J.T @ J + np.eye(len(candidates)) / prior_log_sd ** 2)
    rel = np.sqrt(np.diag(cov))
    corr = cov / np.outer(rel, rel)
    reasons: dict[str, list[str]] = {}
    for i, c in enumerate(candidates):
        r = []
        if rel[i] > rel_sd_limit:
            r.append(f"relative SD {rel[i]:.2f} > {rel_sd_limit}")
        for j, c2 in enumerate(candidates):
            if j != i and abs(corr[i, j]) > corr_limit:
                r.append(f"|corr| with {c2} = {abs(corr[i, j]):.3f} > {corr_limit}")
        reasons[c] = r
    rule = (f"not identifiable if posterior relative SD > {rel_sd_limit} (vague prior, log SD "
            f"{prior_log_sd}) or |corr| > {corr_limit} with another candidate")
    return Identifiability(sv, rel, corr, reasons, rule)
