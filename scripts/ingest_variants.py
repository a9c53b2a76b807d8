"""Ingest a germline or somatic VCF/BCF to a normalised variant table + QC record."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.io.variants import ingest_variants
from twinflow.workflow import run_script


def main(sm):
    vcf = sm.params.vcf
    ingest_variants(vcf["path"], sm.output.table, sm.output.qc, patient=sm.wildcards.patient, sample=vcf["select"],
                    kind=sm.wildcards.kind)


run_script(snakemake, main)  # noqa: F821
