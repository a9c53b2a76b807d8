"""Cohort index page linking every patient report."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
import json
import os

import pandas as pd

from twinflow.report.html import cohort_index
from twinflow.workflow import run_script


def main(sm):
    df = pd.read_csv(sm.input.summary, sep="\t")
    rows = json.loads(df.to_json(orient="records"))
    here = os.path.dirname(sm.output[0])
    links = {r.split(os.sep)[-2]: os.path.relpath(r, here) for r in sm.input.reports}
    cohort_index(sm.output[0], rows, links)


run_script(snakemake, main)  # noqa: F821
