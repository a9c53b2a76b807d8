"""The interface every twin model implements (segment -> estimate -> simulate -> twin).

The workflow's rules are generic: for each patient they call the model named in
``patients.tsv`` (see :mod:`twinflow.models.registry`).  A model receives a
:class:`PatientContext` (the patient's sheet rows and where the ingested data lie) and
writes into the folder it is given.  ``resimulate`` must re-create the files listed in a
twin's ``simulations`` byte for byte from the twin folder alone (``twinflow verify``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PatientContext:
    patient_id: str
    row: dict[str, Any]                    # patients.tsv row (paths resolved + *_display)
    images: list[Any]                      # twinflow.sheets.ImageRow, sorted by date
    treatments: list[dict[str, Any]]       # treatments.tsv rows, sorted by date
    results: Path                          # <results>/<patient_id>
    config: dict[str, Any] = field(default_factory=dict)   # this model's config section

    @property
    def ingest(self) -> Path:
        return self.results / "ingest"

    def image_path(self, visit: str, series: str) -> Path:
        return self.ingest / "imaging" / visit / f"{series}.nii.gz"

    def label_path(self, visit: str, series: str) -> Path:
        return self.ingest / "imaging" / visit / f"{series}.label.nii.gz"

    def visits(self) -> list[tuple[str, str]]:
        """(visit, date) pairs in date order."""
        seen: dict[str, str] = {}
        for r in self.images:
            seen.setdefault(r.visit, r.date)
        return sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))

    def series_of(self, visit: str) -> dict[str, Any]:
        return {r.series: r for r in self.images if r.visit == visit}

    def segment_dir(self, visit: str) -> Path:
        return self.results / "segment" / visit

    @property
    def pgx_record(self) -> Path:
        return self.results / "pgx" / "record.json"


class TwinModel:
    name: str = ""
    version: str = ""
    description: str = ""
    uses_previous_segmentation: bool = False

    def segment_visits(self, ctx: PatientContext) -> list[str]:
        """Visits that get a segmentation job."""
        raise NotImplementedError

    def segment(self, ctx: PatientContext, visit: str, out_dir: Path) -> None:
        raise NotImplementedError

    def estimate(self, ctx: PatientContext, out_dir: Path) -> None:
        raise NotImplementedError

    def simulate(self, ctx: PatientContext, estimate_dir: Path, out_dir: Path) -> None:
        raise NotImplementedError

    def build_twin(self, ctx: PatientContext, builder: Any, estimate_dir: Path, simulate_dir: Path) -> dict:
        """Add maps/inputs/results/plots to ``builder``; return the model's part of twin.json
        (``parameters``, ``maps``, ``simulations``, ``assumptions``, ``seeds`` and extras)."""
        raise NotImplementedError

    def resimulate(self, twin_dir: Path, doc: dict, sim_name: str) -> dict[str, bytes]:
        raise NotImplementedError

    def simulate_arm(self, twin_dir: Path, doc: dict, arm: dict | str) -> dict[str, bytes]:
        raise NotImplementedError

    def figures(self, twin_dir: Path, doc: dict) -> list[tuple[str, str]]:
        """(png path, caption) pairs for the patient report."""
        return []
