"""Scenario comparison table: KPIs with 95 % CIs over replications."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.hospital import workflow as hw

hw.run_script(snakemake, lambda sm: hw.step_scenarios(list(sm.input), sm.output[0]))  # noqa: F821
