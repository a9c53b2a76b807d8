"""treatments.tsv rows -> a :class:`~twinflow.models.oncology.growth.Schedule` on the model clock.

Clock: days from ``reference_date`` (the first calibration visit, or the forecast start);
an administration dated ``D`` acts at ``D`` 00:00 (the demo cohort does the same), i.e. at the
start of the model step that begins that day.

* **Radiotherapy** rows (``kind = radiotherapy``, ``unit = Gy``): one fraction of ``dose`` Gy.
  Fractions before the reference date are dropped (they are in the past of the twin).
* **Drug** rows (``kind = drug``): the dose in mg from its unit (``mg``, ``g``, ``ug``;
  ``mg/m2`` and ``g/m2`` times the body-surface area; ``mg/kg`` and ``ug/kg`` times the weight;
  ``mg*min/mL``, an AUC target, by the Calvert formula ``dose = AUC (GFR + 25)``).  Each agent
  goes through a linear one-compartment PK model (:class:`twinflow.pkpd.compartment.OneCompartment`)
  whose exact AUC over each model step drives the log-kill.  Doses before the reference date
  still contribute their remaining exposure.

PK parameters per agent come from ``pk`` (agent name, lower case -> dict).  Keys:
``cl_l_h`` or ``cl_l_h_per_m2``; ``v_l`` or ``v_l_per_m2``; ``ka_per_h`` (absent/None: IV
bolus); ``f`` (bioavailability, default 1); ``cl_scale`` (multiplies the clearance: organ
function or genotype, default 1); ``potency`` (relative log-kill weight, default 1).  The
only built-in agent is temozolomide (:data:`TEMOZOLOMIDE_PK`, oral, CL/F 5.5 L/h/m^2,
V/F 12.7 L/m^2, ka 5.8 1/h: Jen et al., Pharm Res 2000;17:1284-9; Ostermann et al., Clin
Cancer Res 2004;10:3728-36).  With several agents the model's single drug sensitivity
``kappa`` acts on the potency-weighted sum of their exposures.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping

import numpy as np

from twinflow.errors import InputError
from twinflow.models.oncology.growth import Schedule
from twinflow.pkpd.compartment import OneCompartment

TEMOZOLOMIDE_PK = {"cl_l_h_per_m2": 5.5, "v_l_per_m2": 12.7, "ka_per_h": 5.8, "f": 1.0}
DEFAULT_PK: dict[str, dict[str, Any]] = {"temozolomide": TEMOZOLOMIDE_PK}

_MG_PER = {"mg": 1.0, "g": 1000.0, "ug": 1e-3}


def _day(date: Any, reference: dt.date) -> float:
    if isinstance(date, dt.datetime):
        d = date.date()
    elif isinstance(date, dt.date):
        d = date
    else:
        d = dt.date.fromisoformat(str(date)[:10])
    return float((d - reference).days)


def _as_date(d: Any) -> dt.date:
    if isinstance(d, dt.datetime):
        return d.date()
    if isinstance(d, dt.date):
        return d
    return dt.date.fromisoformat(str(d)[:10])


def dose_mg(dose: float, unit: str, *, bsa_m2: float | None = None, weight_kg: float | None = None,
            gfr_ml_min: float | None = None, patient: str | None = None) -> float:
    """A drug dose in mg from a treatments.tsv dose and unit."""
    u = unit.strip().lower().replace("²", "2").replace(" ", "")
    if u in _MG_PER:
        return float(dose) * _MG_PER[u]
    if u in ("mg/m2", "g/m2"):
        if not bsa_m2:
            raise InputError(f"dose in {unit} needs the body-surface area (height and weight)", patient=patient)
        return float(dose) * _MG_PER[u.split("/")[0]] * bsa_m2
    if u in ("mg/kg", "ug/kg"):
        if not weight_kg:
            raise InputError(f"dose in {unit} needs the body weight", patient=patient)
        return float(dose) * _MG_PER[u.split("/")[0]] * weight_kg
    if u == "mg*min/ml":
        if gfr_ml_min is None:
            raise InputError(f"dose in {unit} (an AUC target) needs the GFR for the Calvert formula", patient=patient)
        return float(dose) * (gfr_ml_min + 25.0)
    raise InputError(f"unsupported drug dose unit {unit!r}", patient=patient)


def pk_model(agent: str, bsa_m2: float | None, pk: Mapping[str, Mapping[str, Any]] | None = None,
             patient: str | None = None) -> tuple[OneCompartment, float]:
    """The agent's one-compartment model (population values scaled by BSA where given per m^2,
    clearance times ``cl_scale``) and its relative potency."""
    table = {**DEFAULT_PK, **{k.lower(): dict(v) for k, v in (pk or {}).items()}}
    a = agent.strip().lower()
    if a not in table:
        raise InputError(f"no PK parameters for drug {agent!r}: pass them in the PK table "
                         "(cl_l_h[_per_m2], v_l[_per_m2], ka_per_h, f)", patient=patient)
    p = {**DEFAULT_PK.get(a, {}), **table[a]}

    def per(name: str) -> float:
        if name in p and p[name] is not None:
            return float(p[name])
        if f"{name}_per_m2" in p:
            if not bsa_m2:
                raise InputError(f"PK of {agent} is per m^2 and needs the body-surface area", patient=patient)
            return float(p[f"{name}_per_m2"]) * bsa_m2
        raise InputError(f"PK of {agent}: missing {name} or {name}_per_m2", patient=patient)

    cl = per("cl_l_h") * float(p.get("cl_scale", 1.0))
    ka = p.get("ka_per_h")
    model = OneCompartment(cl_l_h=cl, v_l=per("v_l"), ka_per_h=None if ka is None else float(ka),
                           f=float(p.get("f", 1.0)))
    return model, float(p.get("potency", 1.0))


def _get(row: Any, key: str) -> Any:
    return row[key] if isinstance(row, Mapping) else getattr(row, key)


def schedule_from_treatments(rows: Iterable[Any], reference_date: Any, *, bsa_m2: float | None = None,
                             weight_kg: float | None = None, gfr_ml_min: float | None = None,
                             pk: Mapping[str, Mapping[str, Any]] | None = None,
                             patient: str | None = None) -> Schedule:
    """Build the model schedule from treatments.tsv rows (dicts or a DataFrame's rows; one
    patient).  See the module docstring for units, clock and PK."""
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        rows = rows.to_dict("records")
    ref = _as_date(reference_date)
    rt_days, rt_dose = [], []
    drugs: dict[str, tuple[list[float], list[float]]] = {}
    for r in rows:
        kind = str(_get(r, "kind")).strip().lower()
        unit = str(_get(r, "unit")).strip()
        dose = float(_get(r, "dose"))
        day = _day(_get(r, "date"), ref)
        if kind == "radiotherapy":
            if unit.lower() != "gy":
                raise InputError(f"radiotherapy dose unit must be Gy, got {unit!r}", patient=patient)
            if day >= 0:
                rt_days.append(day)
                rt_dose.append(dose)
        elif kind == "drug":
            agent = str(_get(r, "agent")).strip().lower()
            mg = dose_mg(dose, unit, bsa_m2=bsa_m2, weight_kg=weight_kg, gfr_ml_min=gfr_ml_min, patient=patient)
            t, d = drugs.setdefault(agent, ([], []))
            t.append(day * 24.0)
            d.append(mg)
        else:
            raise InputError(f"unknown treatment kind {kind!r} (radiotherapy or drug)", patient=patient)
    order = np.argsort(rt_days, kind="stable")
    sched = Schedule(rt_days=np.asarray(rt_days, float)[order], rt_dose_gy=np.asarray(rt_dose, float)[order])
    if drugs:
        parts = []
        for agent in sorted(drugs):
            model, potency = pk_model(agent, bsa_m2, pk, patient)
            t, d = drugs[agent]
            parts.append((model, potency, np.asarray(t, float), np.asarray(d, float)))

        def exposure(t0_day: float, t1_day: float, _parts=tuple(parts)) -> float:
            return float(sum(w * m.exposure(t0_day * 24.0, t1_day * 24.0, t, d)[0] for m, w, t, d in _parts))

        sched.drug_exposure = exposure
        sched.drug_agents = tuple(sorted(drugs))        # type: ignore[attr-defined]
    return sched
