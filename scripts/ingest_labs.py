"""Ingest a labs CSV (long LOINC layout or Synthea export) to an SI-unit table + QC record."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.qc import check_implausible_labs
from twinflow.io.labs import ingest_labs
from twinflow.workflow import run_script


def main(sm):
    labs, pid = sm.params.labs, sm.wildcards.patient
    qc = ingest_labs(labs["path"], sm.output.table, sm.output.qc, patient=pid, subject=labs["select"])
    check_implausible_labs(qc, sm.params.implausible, patient=pid, path=labs["path"],
                           outputs=[sm.output.table, sm.output.qc])


run_script(snakemake, main)  # noqa: F821
