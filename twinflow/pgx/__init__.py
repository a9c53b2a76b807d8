"""Germline pharmacogenomics, somatic hotspots and the per-patient PGx/physiology record.

* :mod:`twinflow.pgx.definitions` -- PharmCAT allele definitions and CPIC functions (package data)
* :mod:`twinflow.pgx.matcher` -- PharmCAT's named-allele matching (top candidate, DPYD, HapB3)
* :mod:`twinflow.pgx.pharmcat` -- VCF rows -> sample alleles -> matcher -> CPIC phenotype, per gene
* :mod:`twinflow.pgx.tables` -- allele/phenotype tables from the ``pypgx`` package (legacy, CYP2D6)
* :mod:`twinflow.pgx.caller` -- diplotypes, phenotypes, activity scores (``matcher="pharmcat"|"legacy"``)
* :mod:`twinflow.pgx.somatic` -- actionable hotspot codons by GRCh38 coordinate
* :mod:`twinflow.pgx.record` -- the record embedded in the twin (JSON + TSV)
* :mod:`twinflow.pgx.cli` -- ``twinflow pgx VCF [--sample NAME] [--json] [--matcher pharmcat|legacy]``
"""

from twinflow.pgx.caller import call_gene, call_genes, call_vcf
from twinflow.pgx.tables import GENES, source_info

__all__ = ["GENES", "call_gene", "call_genes", "call_vcf", "source_info"]
