"""Cohort summary table from the twins."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.cohort.summary import cohort_summary
from twinflow.workflow import run_script

run_script(snakemake, lambda sm: cohort_summary(list(sm.input), sm.output.tsv))  # noqa: F821
