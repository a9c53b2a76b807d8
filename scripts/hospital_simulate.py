"""One replication of one scenario, with its recorded seed."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.hospital import workflow as hw

hw.run_script(snakemake, lambda sm: hw.step_simulate(  # noqa: F821
    sm.input.model, sm.wildcards.scenario, sm.params.scenario, sm.params.seed, int(sm.wildcards.rep),
    sm.output.summary, sm.output.cases))
