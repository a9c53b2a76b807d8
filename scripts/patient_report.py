"""Offline HTML report of one patient's twin."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
import json
from pathlib import Path

from twinflow.models import registry
from twinflow.report.html import patient_report
from twinflow.workflow import run_script


def main(sm):
    twin_dir = Path(sm.input.twin).parent
    twin = json.loads(Path(sm.input.twin).read_text())
    qc = json.loads(Path(sm.input.qc).read_text())
    sections = registry.get(twin["model"]["name"]).report_sections(twin_dir, twin)
    patient_report(sm.output[0], twin=twin, qc=qc, sections=sections)


run_script(snakemake, main)  # noqa: F821
