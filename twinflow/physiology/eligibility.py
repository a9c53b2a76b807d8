"""Blood-count thresholds for giving a cytotoxic dose.

Defaults are the usual criteria to start a cycle of myelosuppressive chemotherapy, e.g. the
temozolomide label and the Stupp protocol (Stupp R et al., N Engl J Med 2005;352:987):
absolute neutrophil count >= 1.5 x 10^9/L and platelets >= 100 x 10^9/L.
"""

from __future__ import annotations

from typing import Any

ANC_MIN_1E9_L = 1.5
PLATELETS_MIN_1E9_L = 100.0


def dosing_eligibility(neutrophils_1e9_l: float, platelets_1e9_l: float, *,
                       anc_min: float = ANC_MIN_1E9_L,
                       platelets_min: float = PLATELETS_MIN_1E9_L) -> dict[str, Any]:
    anc_ok = neutrophils_1e9_l >= anc_min
    plt_ok = platelets_1e9_l >= platelets_min
    reasons = []
    if not anc_ok:
        reasons.append(f"neutrophils {neutrophils_1e9_l:g} < {anc_min:g} x10^9/L")
    if not plt_ok:
        reasons.append(f"platelets {platelets_1e9_l:g} < {platelets_min:g} x10^9/L")
    return {"eligible": anc_ok and plt_ok, "neutrophils_ok": anc_ok, "platelets_ok": plt_ok,
            "anc_min_1e9_l": anc_min, "platelets_min_1e9_l": platelets_min, "reasons": reasons}
