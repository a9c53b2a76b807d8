"""Cohort summary: one row per patient from the twins alone (no twin is recomputed)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from twinflow.io.atomic import write_tsv


def summary_row(twin: dict) -> dict:
    row = {"patient_id": twin["patient_id"], "twin_model": twin["model"]["name"],
           "model_version": twin["model"]["version"]}
    for k, v in sorted(twin["parameters"].items()):
        if v.get("estimated", True):
            row[f"{k}"] = v.get("value")
            row[f"{k}_sd"] = v.get("sd")
    not_ident = sorted(k for k, v in twin["parameters"].items() if v.get("identifiable") is False)
    row["not_identifiable"] = ";".join(not_ident)
    fc = twin.get("forecast") or []
    if fc:
        last = fc[-1]
        for k in ("dice", "ccc", "volume_rel_error", "cell_count_rel_error"):
            row[f"forecast_{k}"] = last.get(k)
        row["forecast_visit"] = last.get("visit")
    cf = twin.get("cardiac_function")
    if cf:
        for k in ("edv_ml", "esv_ml", "ef_percent", "lv_mass_g"):
            row[k] = cf.get(k)
    flags = twin.get("ingest_flags") or []
    row["n_qc_flags"] = len(flags)
    row["qc_flags"] = "; ".join(flags)
    row["twin_sha256_manifest_files"] = len(twin.get("manifest", {}))
    return row


def cohort_summary(twin_jsons: list[str], out_tsv: str) -> pd.DataFrame:
    rows = [summary_row(json.loads(Path(f).read_text())) for f in sorted(twin_jsons)]
    df = pd.DataFrame(rows)
    lead = ["patient_id", "twin_model", "model_version"]
    df = df[lead + sorted(c for c in df.columns if c not in lead)] if len(df) else df
    write_tsv(out_tsv, df)
    return df
