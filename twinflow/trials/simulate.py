"""Simulating one chunk of one arm: every virtual patient of the chunk through the model's
:meth:`~twinflow.models.base.TrialModel.simulate_virtual`, one row each.

Endpoint columns: a continuous endpoint ``<name>`` (float), a binary one ``<name>`` (bool), a
time-to-event one ``<name>.time_days`` and ``<name>.event``.  A patient whose simulation
fails on bad input or arithmetic is kept with ``status = "failed: <reason>"`` and empty
endpoints: CONSORT counts them as randomised, not analysed.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

from twinflow.errors import InputError
from twinflow.trials.sampling import COV, patient_of

log = logging.getLogger("twinflow.trials")
KINDS = ("continuous", "binary", "time_to_event")


def endpoint_columns(name: str, kind: str) -> list[str]:
    return [f"{name}.time_days", f"{name}.event"] if kind == "time_to_event" else [name]


def flatten(values: Mapping[str, Any], endpoints: Mapping[str, Mapping[str, str]], names: list[str],
            model: str) -> dict[str, Any]:
    """One patient's endpoint values as table columns (checked against the endpoint kinds)."""
    out: dict[str, Any] = {}
    for name in names:
        kind = endpoints[name]["kind"]
        if name not in values:
            raise TypeError(f"{model} trial: simulate_virtual returned no endpoint {name!r}")
        v = values[name]
        if kind == "time_to_event":
            t, e = float(v["time"]), bool(v["event"])
            if not (math.isfinite(t) and t >= 0):
                raise ArithmeticError(f"{name}: time {t!r} is not a finite non-negative number of days")
            out[f"{name}.time_days"], out[f"{name}.event"] = t, e
        elif kind == "binary":
            out[name] = bool(v)
        else:
            x = float(v)
            if not math.isfinite(x):
                raise ArithmeticError(f"{name}: {x!r} is not finite")
            out[name] = x
    return out


def empty_endpoints(endpoints: Mapping[str, Mapping[str, str]], names: list[str]) -> dict[str, Any]:
    return {c: None for n in names for c in endpoint_columns(n, endpoints[n]["kind"])}


def simulate_chunk(tm: Any, population: pd.DataFrame, cfg: Mapping[str, Any], arm: str, chunk: int,
                   sources: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of chunk ``chunk`` of ``arm``: vp_id, arm, source, status, the endpoints."""
    regimen = next(a for a in cfg["arms"] if a["name"] == arm)
    sel = population[(population["arm"] == arm) & (population["chunk"] == chunk)].sort_values("arm_rank")
    names = list(cfg["endpoints"])
    rows = []
    for rec in sel.to_dict("records"):
        patient = patient_of(rec)
        base = {"vp_id": rec["vp_id"], "arm": arm, "source": rec["source"]}
        try:
            values = flatten(tm.simulate_virtual(patient, regimen, cfg["simulation"], sources), tm.endpoints, names,
                             cfg["model"])
            status = "ok"
        except (InputError, ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
            log.warning("%s on %s: simulation failed: %s", rec["vp_id"], arm, exc)
            values, status = empty_endpoints(tm.endpoints, names), f"failed: {exc}"
        rows.append({**base, "status": status, **values})
    cols = ["vp_id", "arm", "source", "status"] + [c for n in names for c in endpoint_columns(n, tm.endpoints[n]["kind"])]
    df = pd.DataFrame(rows, columns=cols)
    for n in names:
        kind = tm.endpoints[n]["kind"]
        if kind == "time_to_event":
            df[f"{n}.time_days"] = df[f"{n}.time_days"].astype(float)
            df[f"{n}.event"] = df[f"{n}.event"].astype("boolean")
        elif kind == "binary":
            df[n] = df[n].astype("boolean")
        else:
            df[n] = df[n].astype(float)
    return df


def gather(population: pd.DataFrame, chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """Per randomised patient: the chunk results joined to the patient's covariates, in vp_id
    order; every randomised patient exactly once."""
    res = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
    rand = population[population["randomised"]]
    if sorted(res["vp_id"]) != sorted(rand["vp_id"]):
        missing = sorted(set(rand["vp_id"]) - set(res["vp_id"]))[:5]
        raise InputError(f"the chunk results do not cover the randomised patients exactly (e.g. missing {missing})",
                         path="chunks")
    cov = rand[["vp_id", "stratum"] + [c for c in rand.columns if c.startswith(COV)]]
    out = res.merge(cov, on="vp_id", how="left").sort_values("vp_id").reset_index(drop=True)
    return out
