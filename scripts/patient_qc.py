"""Summarise one patient's ingest QC (or fail with the patient's sheet problem)."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.qc import patient_qc
from twinflow.workflow import patient_context, run_script


def main(sm):
    ctx = patient_context(sm)
    patient_qc(sm.output[0], patient=ctx.patient_id, row=ctx.row, images=ctx.images, treatments=ctx.treatments,
               error=ctx.problem)


run_script(snakemake, main)  # noqa: F821
