"""Assemble a patient's twin artefact from the stage outputs (generic over twin models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twinflow.models.base import PatientContext, TwinModel
from twinflow.provenance import code_digest
from twinflow.models import registry
from twinflow.twin.artefact import TwinBuilder, input_record, sha256_json
from twinflow.twin.software import pipeline_git, software


def raw_inputs(ctx: PatientContext) -> list[dict]:
    """Every raw input of the patient, by role, with sheet-relative path, size and SHA-256."""
    recs = []
    for r in ctx.images:
        recs.append(input_record(f"imaging:{r.visit}:{r.series}", r.path, r.path_display))
        if r.label_path:
            recs.append(input_record(f"label:{r.visit}:{r.series}", r.label_path, r.label_display))
    for key in ("germline_vcf", "somatic_vcf", "labs"):
        if ctx.row.get(key):
            recs.append(input_record(key, ctx.row[key], ctx.row[f"{key}_display"]))
    return recs


def build_twin(ctx: PatientContext, model: TwinModel, *, estimate_dir: Path, simulate_dir: Path,
               twin_json: Path, resolved_config: dict[str, Any]) -> dict:
    twin_dir = Path(twin_json).parent
    with TwinBuilder(twin_dir) as b:
        part = model.build_twin(ctx, b, Path(estimate_dir), Path(simulate_dir))
        doc: dict[str, Any] = {
            "patient_id": ctx.patient_id,
            "model": {"name": model.name, "version": model.version, "description": model.description,
                      "code_digest": code_digest(registry.module_of(model.name))},
            "inputs": raw_inputs(ctx),
            "config": {"resolved": resolved_config, "sha256": sha256_json(resolved_config)},
            "software": software(),
            "pipeline": pipeline_git(),
        }
        if ctx.pgx_record.is_file():
            doc["pgx"] = json.loads(ctx.pgx_record.read_text())
        qc = ctx.ingest / "qc.json"
        if qc.is_file():
            doc["ingest_flags"] = json.loads(qc.read_text()).get("flags", [])
        doc.update(part)
        doc.setdefault("seeds", {})
        doc.setdefault("assumptions", [])
        return b.commit(doc)
