"""Ingest a germline or somatic VCF/BCF to a normalised variant table + QC record."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.io.variants import ingest_variants
from twinflow.workflow import run_script


def main(sm):
    c = sm.params.ctx
    ingest_variants(c["path"], sm.output.table, sm.output.qc, patient=sm.wildcards.patient,
                    sample=c["sample"], kind=sm.wildcards.kind, display_path=c["display"])


run_script(snakemake, main)  # noqa: F821
