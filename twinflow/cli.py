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


def _verify(args: argparse.Namespace) -> int:
    from twinflow.twin.verify import verify_folder

    # the trial options (twinflow verify only; `twinflow hospital verify` has none)
    patients = None if getattr(args, "all_patients", False) else getattr(args, "resimulate", 2)
    status = 0
    for d in args.twin_dirs:
        rep = verify_folder(d, resimulate=not args.hashes_only, patients=patients,
                            twins_root=getattr(args, "twins", None))
        print("\n".join(rep.lines()))
        status = status or (0 if rep.ok else 1)
    return status


def _simulate(args: argparse.Namespace) -> int:
    from twinflow.models import registry
    from twinflow.twin.artefact import load
    from twinflow.twin.verify import verify

    rep = verify(args.twin_dir, resimulate=False)
    if not rep.ok:
        print("\n".join(rep.lines()), file=sys.stderr)
        return 1
    doc = load(args.twin_dir)
    model = registry.get(doc["model"]["name"])
    try:
        files = model.simulate_arm(Path(args.twin_dir), doc, args.arm)
    except KeyError as exc:
        print(f"twinflow: error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.out:
        from twinflow.io.atomic import write_bytes

        for rel, data in files.items():
            write_bytes(Path(args.out) / rel, data)
            print(Path(args.out) / rel)
    else:
        for data in files.values():
            sys.stdout.write(data.decode())
    return 0


def _pe_risk(args: argparse.Namespace) -> int:
    from twinflow.models.pregnancy.batch import run

    if not args.cutoff_one_in > 1:
        raise InputError(f"--cutoff-one-in must be above 1, got {args.cutoff_one_in:g}")
    text = run(args.input, args.out, cutoff=1.0 / args.cutoff_one_in, sle_aps=args.sle_aps)
    if args.out:
        print(args.out)
    else:
        sys.stdout.write(text)


def _hospital_run(args: argparse.Namespace) -> int:
    import yaml

    from twinflow.hospital.workflow import run_site

    cfg = yaml.safe_load(Path(args.config).read_text()) or {}
    sites = cfg.get("hospital") or {}
    if args.site not in sites:
        print(f"twinflow: error: no site {args.site!r} in the hospital section of {args.config}", file=sys.stderr)
        return 2
    out = Path(args.out)
    paths = run_site(args.site, sites[args.site], out)
    print(paths["report"])
    print(paths["twin"])
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
    v = sub.add_parser("verify", help="check a twin (or trial) artefact's hashes and re-run its simulations")
    v.add_argument("twin_dirs", nargs="+", metavar="TWIN_DIR",
                   help="results/<patient>/twin, results/hospital/<site>/twin or results/trials/<name>/trial")
    v.add_argument("--hashes-only", action="store_true", help="check hashes, do not re-simulate")
    v.add_argument("--resimulate", type=int, default=2, metavar="N",
                   help="trials: virtual patients per arm to simulate again (default 2)")
    v.add_argument("--all-patients", action="store_true", help="trials: simulate every virtual patient again")
    v.add_argument("--twins", metavar="RESULTS", help="trials: find source twins as RESULTS/<patient>/twin")
    v.set_defaults(func=_verify)
    sm = sub.add_parser("simulate", help="run one treatment arm from a twin artefact")
    sm.add_argument("twin_dir", metavar="TWIN_DIR")
    sm.add_argument("--arm", required=True, help="arm name, e.g. no_treatment, hypo_40gy_15fx, metoprolol_50mg_bid")
    sm.add_argument("--out", help="folder for the result files (default: print the table)")
    sm.set_defaults(func=_simulate)
    pe = sub.add_parser("pe-risk", help="first-trimester pre-eclampsia risks (FMF competing-risks model) for a "
                                         "table of women")
    pe.add_argument("input", metavar="INPUT.tsv", help="one row per woman; columns in docs/pregnancy-model.md")
    pe.add_argument("--out", metavar="OUT.tsv", help="write the risks here (default: print them)")
    pe.add_argument("--cutoff-one-in", type=float, default=100.0,
                    help="screen-positive when the risk of PE before 37 weeks is at least 1 in N (default 100)")
    pe.add_argument("--sle-aps", choices=("both", "either"), default="both",
                    help="apply the SLE/APS prior term when both are present (FMF calculator, default) or either")
    pe.set_defaults(func=_pe_risk)


    h = sub.add_parser("hospital", help="hospital operations twins (see docs/hospital.md)")
    hsub = h.add_subparsers(dest="hospital_command", required=True)
    hv = hsub.add_parser("verify", help="check a hospital twin's hashes and re-run its replications byte for byte")
    hv.add_argument("twin_dirs", nargs="+", metavar="TWIN_DIR", help="results/hospital/<site>/twin")
    hv.add_argument("--hashes-only", action="store_true", help="check hashes, do not re-simulate")
    hv.set_defaults(func=_verify)
    hr = hsub.add_parser("run", help="every step of one site in this process (no Snakemake)")
    hr.add_argument("--config", default="config/config.yaml", help="config file with a hospital: section")
    hr.add_argument("--site", required=True)
    hr.add_argument("--out", required=True, help="folder for the site's outputs")
    hr.set_defaults(func=_hospital_run)
    g = sub.add_parser("pgx", help="call pharmacogene diplotypes/phenotypes from a germline VCF", add_help=False)
    g.set_defaults(func=None)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pgx"]:
        from twinflow.pgx.cli import main as pgx_main

        return pgx_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"twinflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
