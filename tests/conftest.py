"""Shared fixtures.

Tests that read the real third-party data in ``../shared/data`` use the ``shared_data``
fixture: it skips in a plain user checkout where that folder is absent, and fails loudly
when ``CI=true`` (CI always has the folder beside the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("TWINFLOW_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if not (d / "MANIFEST.tsv").is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the shared test data folder {d} is missing")
        pytest.skip(f"shared test data not found at {d} (set TWINFLOW_SHARED_DATA)")
    return d
