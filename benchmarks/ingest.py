"""Speed and peak memory of ingest, per modality, and of the whole demo run.

    python benchmarks/ingest.py            # per-modality ingest (each case in its own process)
    python benchmarks/ingest.py --workflow # also: the demo cohort end to end, cold, --cores 2

Prints a Markdown table. Real-data cases use ../shared/data (or $TWINFLOW_SHARED_DATA) and
are skipped when it is absent. Nothing here is asserted; quote the numbers with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TWINFLOW_SHARED_DATA", REPO.parent / "shared" / "data"))

CASE = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
kind, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
if kind == "image":
    from twinflow.io.imaging import ingest_image
    ingest_image(src, out + "/x.nii.gz", out + "/x.qc.json", out + "/x.png", patient="B", visit="V1", series="S", date="2024-01-01")
elif kind == "variants":
    from twinflow.io.variants import ingest_variants
    sample = sys.argv[4] if len(sys.argv) > 4 else None
    ingest_variants(src, out + "/v.tsv", out + "/v.qc.json", patient="B", sample=sample)
elif kind == "labs":
    from twinflow.io.labs import ingest_labs
    ingest_labs(src, out + "/l.tsv", out + "/l.qc.json", patient="B")
dt = time.perf_counter() - t
print(json.dumps({{"seconds": dt, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run_case(kind: str, src: Path, *extra: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([sys.executable, "-c", CASE.format(repo=str(REPO)), kind, str(src), out, *extra],
                           capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workflow", action="store_true", help="also time the demo cohort end to end")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    demo = REPO / "demo" / "data"
    if not (demo / "ONC001").is_dir():
        sys.path.insert(0, str(REPO))
        from twinflow.demo.cohort import generate
        generate(demo)
    cases = [
        ("demo T1 NIfTI 79x97x56", "image", demo / "ONC001" / "V1" / "T1.nii.gz", ()),
        ("demo T1 NRRD (LPS) 79x97x56", "image", demo / "ONC002" / "V1" / "T1.nrrd", ()),
        ("demo germline VCF (21 sites)", "variants", demo / "ONC001" / "germline.vcf.gz", ()),
        ("demo labs CSV (26 rows)", "labs", demo / "ONC001" / "labs.csv", ()),
    ]
    if (SHARED / "MANIFEST.tsv").is_file():
        cases += [
            ("Sunnybrook cine DICOM 240 files -> 4D", "image", SHARED / "sunnybrook" / "SCD0000101", ()),
            ("pyradiomics brain NRRD 256x256x25", "image", SHARED / "pyradiomics" / "brain1_image.nrrd", ()),
            ("PharmCAT 100-sample VCF, one sample", "variants", SHARED / "pharmcat" / "100samples.vcf.bgz", ("s30",)),
            ("PCGR tumour VCF (196 calls)", "variants", SHARED / "pcgr" / "T001-BRCA.grch38.vcf.gz", ()),
        ]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print("| case | best of %d (s) | peak RSS (MB) |" % args.repeat)
    print("|---|---:|---:|")
    for name, kind, src, extra in cases:
        runs = [run_case(kind, src, *extra) for _ in range(args.repeat)]
        best = min(r["seconds"] for r in runs)
        rss = max(r["maxrss_mb"] for r in runs)
        print(f"| {name} | {best:.2f} | {rss:.0f} |")

    if args.workflow:
        with tempfile.TemporaryDirectory() as wd:
            wd = Path(wd)
            sys.path.insert(0, str(REPO))
            from twinflow.demo.cohort import write_sheets
            write_sheets(wd / "demo")
            (wd / "config.yaml").write_text(
                "sheets:\n  patients: demo/patients.tsv\n  imaging: demo/imaging.tsv\n  treatments: demo/treatments.tsv\n"
                "results: results\ndemo:\n  generate: true\n  outdir: demo/data\n")
            cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(wd),
                   "--configfile", str(wd / "config.yaml"), "--cores", "2", "-q"]
            env = dict(os.environ, PYTHONPATH=str(REPO))
            t = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            cold = time.perf_counter() - t
            t = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            noop = time.perf_counter() - t
            child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print()
        print("| demo workflow (3 patients, 67 jobs, --cores 2) | seconds |")
        print("|---|---:|")
        print(f"| cold run (generate + ingest + QC) | {cold:.1f} |")
        print(f"| no-op rerun | {noop:.1f} |")
        print(f"| peak RSS of any child process (MB) | {child:.0f} |")


if __name__ == "__main__":
    main()
