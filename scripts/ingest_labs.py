"""Ingest a labs CSV (long LOINC layout or Synthea export) to an SI-unit table + QC record."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.qc import check_implausible_labs
from twinflow.io.labs import ingest_labs
from twinflow.workflow import run_script


def main(sm):
    qc = ingest_labs(sm.params.path, sm.output.table, sm.output.qc, patient=sm.wildcards.patient,
                     subject=sm.params.subject, display_path=sm.params.display)
    check_implausible_labs(qc, sm.params.implausible, patient=sm.wildcards.patient,
                           path=sm.params.display, outputs=[sm.output.table, sm.output.qc])


run_script(snakemake, main)  # noqa: F821
