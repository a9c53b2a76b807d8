"""Screening, eligibility, randomisation and chunking of a trial's virtual patients.

* **Screening.**  Candidates are drawn from the model's population
  (:meth:`~twinflow.models.base.TrialModel.population`) with one numpy Generator seeded by the
  trial's ``seed``, in batches, until ``n_per_arm x sum(ratio)`` are eligible (or
  ``max_screened`` were drawn: then the trial stops with a message).  The screened list ends
  at the last enrolled candidate, so CONSORT's counts are those of a trial that stopped
  recruiting when it was full.
* **Eligibility.**  Every criterion (``field`` with ``min``/``max``/``in``/``not_in``) must
  hold; a missing value fails it.  The first failed criterion is recorded as the reason.
* **Randomisation.**  Permuted blocks within strata: each stratum (the tuple of the strata
  covariates' values) draws blocks of ``block_size`` holding every arm ``ratio`` times
  ``block_size / sum(ratio)`` times, shuffled with a second Generator seeded by
  ``randomisation.seed``; candidates are allocated in enrolment order.  Arm sizes therefore
  match the ratio exactly without strata (when the total is a multiple of the block) and
  within half a block per stratum with them.
* **Chunks.**  An arm is cut into ``ceil(n_per_arm x ratio / chunk_size)`` contiguous chunks of
  its patients in enrolment order (known before the draw, so the Snakemake DAG is fixed).

Everything here is a pure function of the configuration and the source twins.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

from twinflow.errors import InputError

COV = "cov."
PARAM = "param."


def arm_targets(cfg: Mapping[str, Any]) -> dict[str, int]:
    """Target number randomised per arm: ``n_per_arm`` times the arm's ratio."""
    ratio = cfg["randomisation"]["ratio"]
    return {a["name"]: int(cfg["n_per_arm"]) * int(r) for a, r in zip(cfg["arms"], ratio)}


def n_chunks(cfg: Mapping[str, Any]) -> dict[str, int]:
    size = int(cfg["chunk_size"])
    return {arm: max(1, math.ceil(n / size)) for arm, n in arm_targets(cfg).items()}


def chunk_jobs(cfg: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(arm, chunk) of every simulation job, in a fixed order."""
    return [(arm, k) for arm, n in n_chunks(cfg).items() for k in range(n)]


def failed_criterion(cov: Mapping[str, Any], criteria: list[Mapping[str, Any]]) -> str:
    """'' when every criterion holds, else a short text of the first that fails."""
    for c in criteria:
        f = c["field"]
        v = cov.get(f)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return f"{f} missing"
        if "min" in c and not (isinstance(v, (int, float)) and v >= c["min"]):
            return f"{f} < {c['min']:g}"
        if "max" in c and not (isinstance(v, (int, float)) and v <= c["max"]):
            return f"{f} > {c['max']:g}"
        if "in" in c and v not in c["in"]:
            return f"{f} not in {', '.join(map(str, c['in']))}"
        if "not_in" in c and v in c["not_in"]:
            return f"{f} in {', '.join(map(str, c['not_in']))}"
    return ""


def _check_patient(p: Any, model: str) -> None:
    if not (isinstance(p, dict) and isinstance(p.get("covariates"), dict) and isinstance(p.get("params"), dict)):
        raise TypeError(f"{model} trial population: a virtual patient must be a dict with 'covariates' and 'params'")
    for part in ("covariates", "params"):
        for k, v in p[part].items():
            if not (v is None or isinstance(v, (bool, int, float, str, np.integer, np.floating, np.bool_))):
                raise TypeError(f"{model} trial population: {part}.{k} is not a scalar ({type(v).__name__})")


def screen(tm: Any, sources: list, cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Draw and screen candidates until the trial is full: candidate dicts (``source``,
    ``covariates``, ``params``, ``excluded_by``) in draw order, ending with the last enrolled."""
    need = sum(arm_targets(cfg).values())
    rng = np.random.default_rng(np.random.SeedSequence(int(cfg["seed"])))
    out: list[dict[str, Any]] = []
    eligible = 0
    batch = need
    while eligible < need:
        if len(out) >= cfg["max_screened"]:
            raise InputError(f"only {eligible} of {len(out)} screened virtual patients are eligible; the trial needs "
                             f"{need} (loosen the eligibility criteria or raise max_screened)", path="config")
        batch = min(batch, int(cfg["max_screened"]) - len(out))
        for p in tm.population(sources, cfg["population"], batch, rng):
            _check_patient(p, cfg["model"])
            reason = failed_criterion(p["covariates"], cfg["eligibility"])
            out.append({"source": p.get("source"), "covariates": dict(p["covariates"]), "params": dict(p["params"]),
                        "excluded_by": reason})
            if not reason:
                eligible += 1
                if eligible == need:
                    break
        rate = eligible / len(out)
        batch = max(64, math.ceil((need - eligible) / max(rate, 1e-3) * 1.2))
    return out


def stratum_key(cov: Mapping[str, Any], strata: list[str]) -> str:
    return "|".join(f"{s}={cov.get(s)}" for s in strata) if strata else "all"


def randomise(strata_keys: list[str], cfg: Mapping[str, Any]) -> list[int]:
    """Arm index of each enrolled patient (in enrolment order), by permuted blocks within strata."""
    rnd = cfg["randomisation"]
    ratio = rnd["ratio"]
    reps = rnd["block_size"] // sum(ratio)
    template = np.repeat(np.arange(len(ratio)), np.asarray(ratio) * reps)
    rng = np.random.default_rng(np.random.SeedSequence(int(rnd["seed"])))
    blocks: dict[str, list[int]] = {}
    out = []
    for key in strata_keys:
        if not blocks.get(key):
            blocks[key] = list(rng.permutation(template))
        out.append(int(blocks[key].pop(0)))
    return out


def population_table(tm: Any, sources: list, cfg: Mapping[str, Any]) -> pd.DataFrame:
    """Every screened candidate: ``vp_id``, ``source``, ``eligible``, ``excluded_by``,
    ``randomised``, ``arm``, ``stratum``, ``arm_rank``, ``chunk``, the covariates (``cov.*``)
    and the simulation parameters (``param.*``)."""
    cands = screen(tm, sources, cfg)
    arms = [a["name"] for a in cfg["arms"]]
    strata = list(cfg["randomisation"]["strata"])
    enrolled = [i for i, c in enumerate(cands) if not c["excluded_by"]]
    keys = [stratum_key(cands[i]["covariates"], strata) for i in enrolled]
    alloc = randomise(keys, cfg)
    arm_of = {i: arms[a] for i, a in zip(enrolled, alloc)}
    stratum_of = dict(zip(enrolled, keys))
    width = max(6, len(str(len(cands))))
    rows = []
    rank = {a: 0 for a in arms}
    for i, c in enumerate(cands):
        arm = arm_of.get(i, "")
        r = -1
        if arm:
            r = rank[arm]
            rank[arm] += 1
        rows.append({"vp_id": f"VP{i + 1:0{width}d}", "source": c["source"] or "", "eligible": not c["excluded_by"],
                     "excluded_by": c["excluded_by"], "randomised": bool(arm), "arm": arm,
                     "stratum": stratum_of.get(i, ""), "arm_rank": r,
                     **{COV + k: v for k, v in sorted(c["covariates"].items())},
                     **{PARAM + k: v for k, v in sorted(c["params"].items())}})
    df = pd.DataFrame(rows)
    chunks = n_chunks(cfg)
    df["chunk"] = -1
    for arm in arms:
        sel = df["arm"] == arm
        m = int(sel.sum())
        bounds = [k * m // chunks[arm] for k in range(chunks[arm] + 1)]
        df.loc[sel, "chunk"] = np.searchsorted(bounds, df.loc[sel, "arm_rank"].to_numpy(), side="right") - 1
    front = ["vp_id", "source", "eligible", "excluded_by", "randomised", "arm", "stratum", "arm_rank", "chunk"]
    return df[front + [c for c in df.columns if c not in front]]


def patient_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The virtual patient dict of a population-table row (as the model drew it)."""
    cov, par = {}, {}
    for k, v in row.items():
        if isinstance(v, (np.generic,)):
            v = v.item()
        if isinstance(v, float) and math.isnan(v):
            v = None
        if k.startswith(COV):
            cov[k[len(COV):]] = v
        elif k.startswith(PARAM):
            par[k[len(PARAM):]] = v
    return {"source": row.get("source") or None, "covariates": cov, "params": par}
