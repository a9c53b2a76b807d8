"""Germline pharmacogenomics, somatic hotspots and the per-patient PGx/physiology record.

* :mod:`twinflow.pgx.tables` -- allele/phenotype tables from the ``pypgx`` package
* :mod:`twinflow.pgx.caller` -- diplotypes, phenotypes, activity scores from a variant table
* :mod:`twinflow.pgx.somatic` -- actionable hotspot codons by GRCh38 coordinate
* :mod:`twinflow.pgx.record` -- the record embedded in the twin (JSON + TSV)
* :mod:`twinflow.pgx.cli` -- ``twinflow pgx VCF [--sample NAME] [--json]``
"""

from twinflow.pgx.caller import call_gene, call_genes, call_vcf
from twinflow.pgx.tables import GENES, source_info

__all__ = ["GENES", "call_gene", "call_genes", "call_vcf", "source_info"]
