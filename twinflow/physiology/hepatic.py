"""Hepatic function category of the NCI Organ Dysfunction Working Group (ODWG).

=========  ==========================================================
normal     total bilirubin <= ULN and AST <= ULN
mild       bilirubin <= ULN and AST > ULN, or ULN < bilirubin <= 1.5 x ULN (any AST)
moderate   1.5 x ULN < bilirubin <= 3 x ULN (any AST)
severe     bilirubin > 3 x ULN (any AST)
=========  ==========================================================

Patel H et al., Br J Cancer 2004;90 (the ODWG classification); Ramalingam SS et al.,
J Clin Oncol 2010;28:4507.  Default upper limits of normal: bilirubin 21 umol/L
(1.2 mg/dL), AST 40 U/L (typical adult reference ranges; pass the local ULN when known).
"""

from __future__ import annotations

BILIRUBIN_ULN_UMOL_L = 21.0
AST_ULN_U_L = 40.0


def nci_odwg_category(bilirubin_umol_l: float, ast_u_l: float, *,
                      bilirubin_uln_umol_l: float = BILIRUBIN_ULN_UMOL_L,
                      ast_uln_u_l: float = AST_ULN_U_L) -> str:
    """'normal', 'mild', 'moderate' or 'severe' (see module doc)."""
    b = bilirubin_umol_l / bilirubin_uln_umol_l
    if b > 3.0:
        return "severe"
    if b > 1.5:
        return "moderate"
    if b > 1.0 or ast_u_l > ast_uln_u_l:
        return "mild"
    return "normal"
