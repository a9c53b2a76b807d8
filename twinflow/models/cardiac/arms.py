"""Treatment arms: metoprolol regimens -> steady-state effect -> circulation per arm.

For each arm the PK is run for ``days`` (default 7) of dosing; over the last dosing interval
(steady state) the effect-site concentration at its **trough** (just before the next dose)
and at its **peak** is converted by the Emax models into a heart rate and a contractility
(active elastance of both ventricles), and the circulation is solved to its periodic steady
state at each of the two time points.  The haemodynamics are quasi-static: the heart adapts
in seconds to a concentration that changes over hours.  Baroreflex compensation is *not*
modelled (documented limitation), so the blood-pressure fall is an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .circulation import DEFAULT_PARAMS, Circulation, CirculationParams, pv_loop
from .drugs import DEFAULT_PD, NM_PK, MetoprololPD, MetoprololPK, Regimen, resolve_phenotype, steady_state_exposure

TIMEPOINTS = ("trough", "peak")
TABLE_KEYS = ("hr_bpm", "ef_pct", "co_l_min", "sbp_mmhg", "dbp_mmhg", "map_mmhg", "edv_ml", "esv_ml", "sv_ml")


@dataclass(frozen=True)
class Arm:
    name: str
    dose_mg: float = 0.0
    interval_h: float = 12.0

    @classmethod
    def from_dict(cls, d: dict) -> "Arm":
        return cls(name=str(d["name"]), dose_mg=float(d.get("dose_mg", 0.0)),
                   interval_h=float(d.get("interval_h", 12.0)))


DEFAULT_ARMS = (
    Arm("no drug", 0.0, 24.0),
    Arm("metoprolol 50 mg bid", 50.0, 12.0),
    Arm("metoprolol 100 mg bid", 100.0, 12.0),
    Arm("metoprolol 200 mg daily", 200.0, 24.0),
)


def apply_effect(params: CirculationParams, ce_mg_l: float, pd: MetoprololPD = DEFAULT_PD) -> CirculationParams:
    """Circulation parameters under an effect-site concentration ``ce_mg_l``."""
    fi = float(pd.inotropy_factor(ce_mg_l))
    return params.with_(
        hr_bpm=params.hr_bpm * float(pd.hr_factor(ce_mg_l)),
        lv_emax_mmhg_ml=params.lv_emin_mmhg_ml + fi * (params.lv_emax_mmhg_ml - params.lv_emin_mmhg_ml),
        rv_emax_mmhg_ml=params.rv_emin_mmhg_ml + fi * (params.rv_emax_mmhg_ml - params.rv_emin_mmhg_ml),
    )


def simulate_arms(params: CirculationParams = DEFAULT_PARAMS, arms: Iterable[Arm | dict] = DEFAULT_ARMS,
                  phenotype: str | None = "Normal Metabolizer", *, days: float = 7.0,
                  pk: MetoprololPK = NM_PK, pd: MetoprololPD = DEFAULT_PD,
                  solver: Circulation | None = None, pv_points: int = 100) -> dict[str, Any]:
    """Simulate every arm; returns ``table`` (one row per arm and time point), ``pv_loops``,
    ``pk`` (per arm) and ``assumptions``."""
    solver = solver or Circulation()
    ph, notes = resolve_phenotype(phenotype)
    rows, loops, pk_out = [], {}, {}
    for arm in arms:
        arm = Arm.from_dict(arm) if isinstance(arm, dict) else arm
        exp = steady_state_exposure(Regimen(arm.dose_mg, arm.interval_h), ph.name, days=days, base=pk)
        pk_out[arm.name] = {k: v for k, v in exp.items() if k not in ("t_h", "cp_mg_l", "ce_mg_l", "phenotype_notes")}
        pk_out[arm.name]["profile"] = {k: exp[k][::10] for k in ("t_h", "cp_mg_l", "ce_mg_l")}
        loops[arm.name] = {}
        for tp in TIMEPOINTS:
            ce = exp["ce_trough_mg_l"] if tp == "trough" else exp["ce_peak_mg_l"]
            p = apply_effect(params, ce, pd)
            res = solver.steady_state(p)
            m = res.metrics
            row = {"arm": arm.name, "dose_mg": arm.dose_mg, "interval_h": arm.interval_h,
                   "phenotype": ph.name, "timepoint": tp, "ce_mg_l": ce,
                   "beta1_occupancy": float(pd.occupancy(ce)),
                   "lv_emax_mmhg_ml": p.lv_emax_mmhg_ml}
            row.update({k: m[k] for k in TABLE_KEYS})
            rows.append(row)
            loops[arm.name][tp] = pv_loop(res, pv_points)
    assumptions = list(notes) + [
        "metoprolol tartrate immediate release, apparent one-compartment PK (CL/F, V/F, ka) scaled by "
        f"CYP2D6 phenotype ({ph.name}: AUC x{ph.auc_fold:.3g}, t1/2 x{ph.t_half_fold:.3g}; {ph.source})",
        "CYP2D6 copy number, the *5 deletion and CYP2D6-2D7 hybrids are invisible in a VCF; a "
        "VCF-derived phenotype may be wrong in either direction",
        f"effects evaluated at steady state after {days:g} days, at effect-site trough and peak; "
        "haemodynamics quasi-static; no baroreflex compensation",
        f"Emax PD: EC50 {pd.ec50_mg_l * 1000:g} ng/mL, Imax HR {pd.imax_hr:g}, Imax inotropy "
        f"{pd.imax_inotropy:g} (assumed, see docs/cardiac-model.md)",
    ]
    return {"table": rows, "pv_loops": loops, "pk": pk_out, "assumptions": assumptions,
            "phenotype": ph.name, "timepoints": list(TIMEPOINTS)}
