"""``twinflow pgx VCF [--sample NAME] [--json] [--missing-as-reference] [--genes G,...] [--matcher M]``."""

from __future__ import annotations

import argparse
import json
import sys

from twinflow.errors import InputError
from twinflow.io.atomic import dumps_json


def build_parser(prog: str = "twinflow pgx") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Call pharmacogene diplotypes and CPIC phenotypes "
                                "from a GRCh38 germline VCF/BCF (PharmCAT's matching and allele definitions; "
                                "CPIC phenotypes).")
    p.add_argument("vcf", help="germline VCF or BCF (plain, gzip or bgzip)")
    p.add_argument("--sample", help="sample column (required when the file holds several samples)")
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per gene")
    p.add_argument("--missing-as-reference", action="store_true",
                   help="read positions the VCF does not cover (and no-calls) as reference")
    p.add_argument("--genes", help="comma-separated genes (default: all)")
    p.add_argument("--matcher", choices=("pharmcat", "legacy"), default="pharmcat",
                   help="pharmcat (default): PharmCAT's named-allele matching and definitions for every gene "
                        "but CYP2D6; legacy: twinflow's earlier pypgx-table caller for every gene")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from twinflow.pgx.caller import call_vcf
    from twinflow.pgx.tables import GENES, source_info

    genes = tuple(g.strip().upper() for g in args.genes.split(",")) if args.genes else GENES
    unknown = [g for g in genes if g not in GENES]
    if unknown:
        print(f"twinflow pgx: unknown gene(s): {', '.join(unknown)} (known: {', '.join(GENES)})", file=sys.stderr)
        return 2
    try:
        calls = call_vcf(args.vcf, sample=args.sample, genes=genes, missing_as_reference=args.missing_as_reference,
                         matcher=args.matcher)
    except InputError as exc:
        print(f"twinflow pgx: {exc}", file=sys.stderr)
        return 1
    if args.json:
        keys = ("gene", "matcher", "diplotypes", "phenotype", "activity_score", "missing_positions", "ambiguous",
                "untested_alleles", "not_detectable_alleles", "call", "recommendation_diplotype", "no_call_reason",
                "notes", "source")
        out = [{k: c.get(k) for k in keys} for c in calls]
        sys.stdout.write(dumps_json(out))
        return 0
    if args.matcher == "pharmcat":
        from twinflow.pgx.definitions import source_info as pharmcat_source
        print(f"# allele definitions: PharmCAT {pharmcat_source()['version']} (GRCh38); CYP2D6: pypgx "
              f"{source_info()['version']}")
    else:
        print(f"# allele tables: pypgx {source_info()['version']} (GRCh38)")
    for c in calls:
        dip = " | ".join(c["diplotypes"]) or "no call (Unknown/Unknown)"
        score = "" if c["activity_score"] is None else f"  AS={c['activity_score']:g}"
        amb = "  (ambiguous)" if c["ambiguous"] else ""
        miss = f"  missing={len(c['missing_positions'])}" if c["missing_positions"] else ""
        print(f"{c['gene']:8s} {dip}{amb}  {c['phenotype']}{score}{miss}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
