"""Cohort summary from the twins alone (no twin is recomputed).

* ``summary.tsv``: one row per patient with what every twin has (model, version, how many
  parameters were estimated and identifiable, flags);
* ``summary/<model>.tsv``: one table per kind of twin, one row per patient, with the
  headline numbers that model reports (:meth:`twinflow.models.base.TwinModel.summary`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from twinflow.io.atomic import write_tsv
from twinflow.models import registry

GENERIC_COLUMNS = ["patient_id", "twin_model", "model_version", "calibrated", "n_parameters_estimated", "n_identifiable",
                   "not_identifiable", "n_flags", "flags", "twin_files"]


def summary_row(twin: dict) -> dict[str, Any]:
    params = twin["parameters"]
    estimated = [k for k, v in params.items() if v.get("estimated")]
    return {
        "patient_id": twin["patient_id"],
        "twin_model": twin["model"]["name"],
        "model_version": twin["model"]["version"],
        "calibrated": bool(twin.get("calibrated", True)),
        "n_parameters_estimated": len(estimated),
        "n_identifiable": sum(1 for k in estimated if params[k].get("identifiable")),
        "not_identifiable": ";".join(sorted(k for k in estimated if params[k].get("identifiable") is False)),
        "n_flags": len(twin.get("flags") or []),
        "flags": "; ".join(twin.get("flags") or []),
        "twin_files": len(twin.get("manifest", {})),
    }


def model_tables(twins: list[dict]) -> dict[str, pd.DataFrame]:
    """Model name -> its table (patient_id first, then the model's summary columns in its order)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for doc in twins:
        name = doc["model"]["name"]
        rows.setdefault(name, []).append({"patient_id": doc["patient_id"], **registry.get(name).summary(doc)})
    return {name: pd.DataFrame(r) for name, r in sorted(rows.items())}


def cohort_summary(twin_jsons: list[str], out_tsv: str, model_tsvs: dict[str, str]) -> pd.DataFrame:
    """Write ``out_tsv`` and one table per model (``model_tsvs``: model name -> path)."""
    twins = [json.loads(Path(f).read_text()) for f in sorted(twin_jsons)]
    df = pd.DataFrame([summary_row(t) for t in twins], columns=GENERIC_COLUMNS)
    write_tsv(out_tsv, df)
    tables = model_tables(twins)
    for name, path in model_tsvs.items():
        write_tsv(path, tables.get(name, pd.DataFrame({"patient_id": []})))
    return df
