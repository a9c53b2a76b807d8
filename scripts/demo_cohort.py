"""Generate the built-in demo cohort (data files + ground truth)."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821  twinflow from the repo
from twinflow.demo.cohort import generate
from twinflow.workflow import run_script

run_script(snakemake, lambda sm: generate(sm.params.outdir))  # noqa: F821
