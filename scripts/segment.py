"""Segment one visit with the patient's twin model."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from pathlib import Path

from twinflow.models import registry
from twinflow.workflow import patient_context, run_script


def main(sm):
    ctx = patient_context(sm)
    registry.get(ctx.row["twin_model"]).segment(ctx, sm.wildcards.visit, Path(sm.output[0]))


run_script(snakemake, main)  # noqa: F821
