"""Assemble a patient's twin artefact from the stage outputs (generic over twin models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twinflow.models import registry
from twinflow.models.base import PatientContext, TwinModel
from twinflow.twin.artefact import TwinBuilder, input_record, schema_problems, sha256_json
from twinflow.twin.software import pipeline_git, software

MODEL_KEYS = ("parameters", "maps", "simulations", "assumptions", "seeds", "model_results")


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
        missing = [k for k in MODEL_KEYS if k not in part]
        if missing:
            raise TypeError(f"{type(model).__name__}.build_twin returned no {', '.join(missing)}")
        bad = schema_problems(part["model_results"], model.results_schema)
        if bad:
            raise TypeError(f"{type(model).__name__}.build_twin: model_results do not match the model's "
                            f"results_schema: {'; '.join(bad)}")
        flags = []
        qc = ctx.ingest / "qc.json"
        if qc.is_file():
            flags += [f"ingest: {f}" for f in json.loads(qc.read_text()).get("flags", [])]
        flags += list(part.get("flags") or [])
        doc: dict[str, Any] = {
            "patient_id": ctx.patient_id,
            "model": {"name": model.name, "version": model.version, "description": model.description,
                      "code_digest": registry.model_digest(model.name)},
            "inputs": raw_inputs(ctx),
            "config": {"resolved": resolved_config, "sha256": sha256_json(resolved_config)},
            "software": software(),
            "pipeline": pipeline_git(),
            **{k: part[k] for k in MODEL_KEYS},
            "calibrated": bool(part.get("calibrated", True)),
            "flags": flags,
        }
        if ctx.pgx_record.is_file():
            doc["pgx"] = json.loads(ctx.pgx_record.read_text())
        return b.commit(doc)

