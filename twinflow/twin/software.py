"""What software computed a result: package versions and the pipeline's git state.

Nothing here depends on the host, the user or the time, so it may go into hashed files.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import twinflow

# Packages whose code computes numbers in the pipeline (and the workflow engine).
COMPUTING_PACKAGES = ("numpy", "scipy", "pandas", "nibabel", "SimpleITK", "pysam", "pint",
                      "nilearn", "snakemake", "pypgx", "matplotlib", "jsonschema", "PyYAML")


def package_versions(names: tuple[str, ...] = COMPUTING_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def software(packages: tuple[str, ...] = COMPUTING_PACKAGES) -> dict:
    """Python, twinflow and the exact versions of ``packages``."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "twinflow": twinflow.__version__,
        "packages": package_versions(packages),
    }


def pipeline_git(repo: str | Path | None = None) -> dict:
    """Commit of the pipeline checkout and whether tracked files differ from it.

    ``repo`` defaults to the folder that holds the twinflow package.  Outside a git checkout
    (e.g. an installed wheel) both values are ``None``.
    """
    repo = Path(repo) if repo else Path(twinflow.__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status)}
