"""The trial artefact: a folder with the trial's inputs, seeds, hashes, per-patient results,
analysis and figures, verifiable like a twin (:mod:`twinflow.trials.verify`).

``<results>/trials/<name>/trial/``:

* ``trial.json``          the entry point: configuration (and its SHA-256), model and code
                          digest, source twins (relative folder, SHA-256 of their
                          ``twin.json`` and the sheet columns the population may read), seeds, the population choice and assumptions,
                          CONSORT counts, the analysis, the published figures given in the
                          configuration, software, pipeline commit and a manifest
* ``population.parquet``  every screened candidate (eligibility, arm, chunk, covariates, parameters)
* ``patients.parquet``    every randomised patient's endpoints
* ``plots/*.png``         CONSORT flow, Kaplan-Meier curves, subgroup forest plot, power curve

Nothing in it depends on time, host or absolute paths: the same inputs give the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from twinflow.twin.artefact import TwinBuilder, sha256_file, sha256_json

FORMAT = "twinflow.trial"
FORMAT_VERSION = "1.0.0"
ENTRY = "trial.json"
GENERIC_MODULES = ("twinflow.trials.sampling", "twinflow.trials.simulate", "twinflow.trials.analysis")


def code_digest_of(tm: Any) -> str:
    from twinflow.provenance import code_digest

    return code_digest(*GENERIC_MODULES, *tm.modules)


def source_records(sources: list, trial_dir: Path) -> list[dict[str, str]]:
    return [{"patient_id": s.patient_id, "twin": os.path.relpath(Path(s.twin_dir).resolve(), trial_dir.resolve()),
             "twin_json_sha256": sha256_file(Path(s.twin_dir) / "twin.json"), "row": dict(s.row)} for s in sources]


def trial_doc(name: str, cfg: Mapping[str, Any], tm: Any, sources: list, population: pd.DataFrame,
              patients: pd.DataFrame, trial_dir: Path) -> dict[str, Any]:
    """trial.json without manifest (the analysis recomputed from the tables)."""
    from twinflow.models import registry
    from twinflow.trials.analysis import analyse, flow
    from twinflow.twin.software import pipeline_git, software

    model = registry.model_class(cfg["model"]) if cfg["model"] in registry.names() else None
    arms = [a["name"] for a in cfg["arms"]]
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": name, "title": cfg.get("title", ""),
        "model": {"name": cfg["model"], "version": getattr(model, "version", None), "trial_code_digest": code_digest_of(tm)},
        "config": {"resolved": cfg, "sha256": sha256_json(cfg)},
        "sources": source_records(sources, trial_dir),
        "seeds": {"population": cfg["seed"], "randomisation": cfg["randomisation"]["seed"],
                  "power": cfg["analysis"]["power"]["seed"]},
        "population_choice": tm.population_choice,
        "assumptions": tm.assumptions(cfg["population"], cfg["simulation"]),
        "endpoints": {e: dict(tm.endpoints[e]) for e in cfg["endpoints"]},
        "flow": flow(population, patients, arms),
        "analysis": analyse(patients, cfg, tm.endpoints),
        "published": cfg.get("published", {}),
        "software": software(),
        "pipeline": pipeline_git(),
        "files": {"population": "population.parquet", "patients": "patients.parquet"},
    }


def build_trial(name: str, cfg: Mapping[str, Any], tm: Any, sources: list, population: pd.DataFrame,
                patients: pd.DataFrame, trial_dir: str | Path) -> dict[str, Any]:
    """Write the artefact into a staging folder beside ``trial_dir`` and rename it into place."""
    from twinflow.trials.report import trial_figures
    from twinflow.trials.tables import parquet_bytes

    trial_dir = Path(trial_dir)
    with TwinBuilder(trial_dir, entry=ENTRY, format=FORMAT, format_version=FORMAT_VERSION) as b:
        doc = trial_doc(name, cfg, tm, sources, population, patients, trial_dir)
        b.add_bytes("population.parquet", parquet_bytes(population))
        b.add_bytes("patients.parquet", parquet_bytes(patients))
        doc["figures"] = trial_figures(doc, patients, b.stage / "plots")
        return b.commit(doc)


def load(trial_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(trial_dir) / ENTRY).read_text(encoding="utf-8"))
