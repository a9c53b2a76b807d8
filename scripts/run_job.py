"""Entry point of the per-patient shell: rules: runs one script of this folder with a
snakemake-like object built from the job's spec file (see twinflow/jobs.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twinflow.jobs import main  # noqa: E402

main()
