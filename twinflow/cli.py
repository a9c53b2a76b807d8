"""The ``twinflow`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twinflow import __version__
from twinflow.errors import InputError


def _demo(args: argparse.Namespace) -> int:
    from twinflow.demo import cohort

    out = Path(args.out)
    written = cohort.write_sheets(out, data_rel="data")
    for w in written:
        print(w)
    if not args.sheets_only:
        cohort.generate(out / "data")
        print(f"{out / 'data'}: {len(cohort.data_files(out / 'data'))} data files, ground truth in {out / 'data' / 'truth'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinflow", description="Patient digital twins: pipeline utilities.")
    p.add_argument("--version", action="version", version=f"twinflow {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="write the built-in demo cohort (sheets, data, ground truth)")
    d.add_argument("out", help="folder for the sheets; data go to OUT/data")
    d.add_argument("--sheets-only", action="store_true",
                   help="write only the three sheets (the workflow's demo_cohort rule makes the data)")
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"twinflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
