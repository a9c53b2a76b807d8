"""Summarise one patient's ingest QC (or fail with the patient's sheet problem)."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.qc import patient_qc
from twinflow.workflow import run_script


def main(sm):
    c = sm.params.ctx
    patient_qc(sm.output[0], patient=sm.wildcards.patient, row=c["row"], images=c["images"],
               treatments=c["treatments"], error=sm.params.error)


run_script(snakemake, main)  # noqa: F821
