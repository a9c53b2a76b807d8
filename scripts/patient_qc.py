"""Summarise one patient's ingest QC (or fail with the patient's sheet problem)."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.qc import patient_qc
from twinflow.workflow import run_script


def main(sm):
    patient_qc(sm.output[0], patient=sm.wildcards.patient, row=sm.params.patient, images=sm.params.images,
               treatments=sm.params.treatments, error=sm.params.error)


run_script(snakemake, main)  # noqa: F821
