"""Assemble the self-contained, hashed twin artefact."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from pathlib import Path

from twinflow.models import registry
from twinflow.twin.build import build_twin
from twinflow.workflow import patient_context, run_script


def main(sm):
    ctx = patient_context(sm)
    L = ctx.layout
    build_twin(ctx, registry.get(ctx.row["twin_model"]), estimate_dir=Path(L.estimate(ctx.patient_id)),
               simulate_dir=Path(L.simulate(ctx.patient_id)), twin_json=Path(sm.output[0]),
               resolved_config=sm.params.resolved_config)


run_script(snakemake, main)  # noqa: F821
