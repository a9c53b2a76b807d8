"""One row per patient: what was ingested and which QC flags were raised."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.qc import cohort_qc
from twinflow.workflow import run_script

run_script(snakemake, lambda sm: cohort_qc(list(sm.input), sm.output[0], problems=dict(sm.params.problems)))  # noqa: F821
