"""Pharmacogenomic and physiology record of one patient."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from pathlib import Path

from twinflow.pgx.record import build_record, write_record
from twinflow.workflow import patient_context, run_script


def main(sm):
    ctx = patient_context(sm)
    L, pid = ctx.layout, ctx.patient_id

    def opt(path):
        return Path(path) if Path(path).is_file() else None

    rec = build_record(opt(L.variants(pid, "germline")), opt(L.variants(pid, "somatic")), opt(L.labs(pid)),
                       ctx.row, ctx.treatments, patient_id=pid)
    write_record(rec, sm.output.json, sm.output.tsv)


run_script(snakemake, main)  # noqa: F821
