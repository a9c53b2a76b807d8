"""The hospital twin artefact (inputs by hash, model, seeds, results, manifest)."""
import os, sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.hospital import workflow as hw

hw.run_script(snakemake, lambda sm: hw.step_twin(  # noqa: F821
    sm.params.site, sm.input.log, {name: sm.input[key] for name, key in sm.params.files.items()}, list(sm.input.reps),
    os.path.dirname(sm.output[0])))
