"""Speed and memory of germline PGx calling: PharmCAT matcher vs the legacy caller.

    python benchmarks/pgx.py [--repeat 3] [--vcf PATH]

Default input: ``../shared/data/pharmcat/100samples.vcf.bgz`` (PharmCAT's 100-sample example).
For each matcher it times reading one sample and calling all genes, over every sample, and
the worst single gene call; prints a Markdown table (best of ``--repeat``) with the machine
and the peak resident memory of the process.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pysam  # noqa: E402

from twinflow.io.variants import read_variants  # noqa: E402
from twinflow.pgx.caller import call_gene, call_genes  # noqa: E402
from twinflow.pgx.pharmcat import record_index  # noqa: E402
from twinflow.pgx.tables import GENES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--vcf", default=str(Path(__file__).resolve().parents[2] / "shared/data/pharmcat/100samples.vcf.bgz"))
    args = ap.parse_args()
    samples = list(pysam.VariantFile(args.vcf).header.samples)
    tables = {s: read_variants(args.vcf, sample=s) for s in samples}
    rows = []
    for matcher in ("pharmcat", "legacy"):
        best_w = best_c = float("inf")
        for _ in range(args.repeat):
            w, c = time.perf_counter(), time.process_time()
            for s in samples:
                call_genes(tables[s], GENES, matcher=matcher)
            best_w = min(best_w, time.perf_counter() - w)
            best_c = min(best_c, time.process_time() - c)
        worst = (0.0, "")
        for s in samples:
            idx = record_index(tables[s]) if matcher == "pharmcat" else None
            for g in GENES:
                t = time.perf_counter()
                call_gene(tables[s], g, matcher=matcher, _index=idx)
                worst = max(worst, (time.perf_counter() - t, f"{s} {g}"))
        rows.append((matcher, len(samples), best_w, best_c, best_w / len(samples) * 1000, worst))
    print(f"machine: {platform.node() or '?'} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"input: {args.vcf} ({len(samples)} samples, {len(GENES)} genes each; VCF reading not timed)\n")
    print("| matcher | samples | wall s (all) | CPU s (all) | ms / sample | slowest gene call |")
    print("|---|---|---|---|---|---|")
    for m, n, w, c, per, (ws, wn) in rows:
        print(f"| {m} | {n} | {w:.2f} | {c:.2f} | {per:.1f} | {ws * 1000:.1f} ms ({wn}) |")
    print(f"\npeak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
