"""Write the demo site's synthetic event log (twinflow.demo.eventlog)."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.hospital import workflow as hw

hw.run_script(snakemake, lambda sm: [hw.step_demo_log(p) for p in sm.output])  # noqa: F821
