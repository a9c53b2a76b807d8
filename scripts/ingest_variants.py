"""Ingest a germline or somatic VCF/BCF to a normalised variant table + QC record."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.io.variants import ingest_variants
from twinflow.workflow import run_script


def main(sm):
    ingest_variants(sm.params.path, sm.output.table, sm.output.qc, patient=sm.wildcards.patient,
                    sample=sm.params.sample, kind=sm.wildcards.kind, display_path=sm.params.display)


run_script(snakemake, main)  # noqa: F821
