"""Checking the ``trials:`` section of the configuration before any job runs.

Each trial (``trials.<name>``) is checked against ``trial.schema.yaml`` beside this module and
its model's parts against the schemas of the model's :class:`~twinflow.models.base.TrialModel`
(population options, simulation options, each arm's regimen).  Names a trial uses -- endpoints,
eligibility fields, strata, subgroups, the reference arm -- must be ones the model or the trial
declares.  Every problem is reported with its key path; unknown keys are refused with the
nearest valid name (:func:`twinflow.config.problems`); defaults are filled in.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from typing import Any, Mapping

from twinflow.config import _fill_defaults, problems, raise_problems
from twinflow.io.atomic import dumps_json

NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@lru_cache(maxsize=1)
def trial_schema() -> dict[str, Any]:
    from twinflow.models.base import schema_beside

    return schema_beside(__file__, "trial.schema.yaml")


def _unknown(kind: str, name: str, known) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known) or 'none'})"
    return f"unknown {kind} {name!r}{hint}"


def trial_model(name: str, registry: Any):
    """The :class:`TrialModel` of the registered twin model ``name`` (ValueError if it has none)."""
    if name not in registry.names():
        raise ValueError(_unknown("twin model", name, registry.names()))
    tm = registry.get(name).trial()
    if tm is None:
        raise ValueError(f"twin model {name!r} does not support in-silico trials")
    return tm


def check_trial(name: str, trial: Any, registry: Any) -> tuple[dict[str, Any], list[str]]:
    """One trial with defaults filled in, and its problems (one line each)."""
    where = f"trials.{name}"
    if not NAME.match(str(name)):
        return {}, [f"{where}: a trial name may hold only letters, digits, '_' and '-'"]
    found = problems(trial if trial is not None else {}, trial_schema(), ("trials", name))
    if not isinstance(trial, dict) or not isinstance(trial.get("model"), str) or not isinstance(trial.get("arms"), list) \
            or not all(isinstance(a, dict) and "name" in a for a in trial["arms"]):
        return {}, found
    cfg = _fill_defaults(dict(trial), trial_schema())
    cfg.setdefault("endpoints", [])
    try:
        tm = trial_model(cfg["model"], registry)
    except ValueError as exc:
        return cfg, found + [f"{where}.model: {exc}"]
    for key, schema in (("population", tm.population_schema), ("simulation", tm.simulation_schema)):
        found += problems(cfg[key], schema, ("trials", name, key))
        cfg[key] = _fill_defaults(cfg[key], schema)
    arms = []
    for i, arm in enumerate(cfg["arms"]):
        found += problems(arm.get("regimen") or {}, tm.regimen_schema, ("trials", name, "arms", i, "regimen"))
        arms.append({"name": arm["name"], "regimen": _fill_defaults(dict(arm.get("regimen") or {}), tm.regimen_schema)})
    cfg["arms"] = arms
    names = [a["name"] for a in arms]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        found.append(f"{where}.arms: arm names must be unique ({', '.join(dup)} repeated)")
    for e in cfg["endpoints"] if isinstance(cfg["endpoints"], list) else []:
        if e not in tm.endpoints:
            found.append(f"{where}.endpoints: {_unknown('endpoint', e, tm.endpoints)}")
    covariates = set(tm.covariates)
    for i, c in enumerate(cfg["eligibility"]):
        if c["field"] not in covariates:
            found.append(f"{where}.eligibility.{i}.field: {_unknown('covariate', c['field'], covariates)}")
    rnd = cfg["randomisation"]
    for s in rnd["strata"]:
        if s not in covariates:
            found.append(f"{where}.randomisation.strata: {_unknown('covariate', s, covariates)}")
    ratio = rnd.get("ratio") or [1] * len(arms)
    if len(ratio) != len(arms):
        found.append(f"{where}.randomisation.ratio: {len(ratio)} entries for {len(arms)} arms")
        ratio = [1] * len(arms)
    rnd["ratio"] = list(ratio)
    if rnd["block_size"] == 0:
        rnd["block_size"] = 2 * sum(ratio)
    elif rnd["block_size"] % sum(ratio):
        found.append(f"{where}.randomisation.block_size: {rnd['block_size']} is not a multiple of the ratio's sum {sum(ratio)}")
    an = cfg["analysis"]
    an.setdefault("reference_arm", names[0])
    if an["reference_arm"] not in names:
        found.append(f"{where}.analysis.reference_arm: {_unknown('arm', an['reference_arm'], names)}")
    for s in an["subgroups"]:
        if s not in covariates:
            found.append(f"{where}.analysis.subgroups: {_unknown('covariate', s, covariates)}")
    return cfg, found


def check_trials(trials: Mapping[str, Any] | None, registry: Any, source: str = "config") -> dict[str, Any]:
    """Every trial of the configuration, checked, with defaults; :class:`ConfigError` listing
    every problem otherwise.  ``registry`` is :mod:`twinflow.models.registry` (or an object
    with ``names()`` and ``get(name)``)."""
    out, found = {}, []
    for name, trial in sorted((trials or {}).items()):
        cfg, p = check_trial(str(name), trial, registry)
        # as the artefact records it (floats to 10 significant digits): the trial runs on exactly
        # the configuration that `twinflow verify` reads back from trial.json
        out[str(name)] = json.loads(dumps_json(cfg))
        found += p
    raise_problems(found, source)
    return out
