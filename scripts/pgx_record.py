"""Pharmacogenomic and physiology record of one patient."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.pgx.record import build_record, write_record
from twinflow.workflow import patient_context, run_script


def main(sm):
    ctx = patient_context(sm)
    ing = ctx.ingest

    def opt(name):
        f = ing / name
        return f if f.is_file() else None

    rec = build_record(opt("germline.tsv"), opt("somatic.tsv"), opt("labs.tsv"), ctx.row, ctx.treatments,
                       patient_id=ctx.patient_id)
    write_record(rec, sm.output.json, sm.output.tsv)


run_script(snakemake, main)  # noqa: F821
