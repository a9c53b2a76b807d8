"""Where a patient's results live: the one definition of the results folder's layout.

The workflow's rules (output patterns and input functions) and the twin models (the files a
stage reads) both ask this class, so a path is written down once.  Every method returns a
plain string; pass ``"{patient}"``, ``"{visit}"`` ... to get a Snakemake pattern::

    L = Layout("results")
    L.segment("{patient}", "{visit}")      # 'results/{patient}/segment/{visit}'
    L.segment("P001", "V2")                # 'results/P001/segment/V2'

Layout of ``<results>/<patient>/``::

    sheet.json                      the patient's sheet rows (paths resolved)
    ingest/imaging/<visit>/<series>.nii.gz | .qc.json | .png | .label.nii.gz | .label.qc.json
    ingest/<germline|somatic>.tsv | .qc.json, ingest/labs.tsv | .qc.json
    ingest/qc.json                  the patient's ingest QC summary
    segment/<visit>/                a visit's segmentation (files chosen by the model)
    pgx/record.json | record.tsv    pharmacogenomics and physiology
    estimate/                       calibration
    simulate/                       simulations
    twin/twin.json                  the twin artefact (docs/twin-artefact.md)
    report.html                     the patient's report

and of ``<results>/trials/<name>/`` (an in-silico trial, :mod:`twinflow.trials`)::

    population.parquet, sample.json the screened virtual patients
    chunks/<arm>/<k>.parquet        one simulation job's patients
    trial/trial.json                the trial artefact (twinflow/trials/artefact.py)
    report.html                     the trial's report
"""

from __future__ import annotations

import os


class Layout:
    def __init__(self, results: str):
        self.root = str(results).rstrip("/") or "."

    @classmethod
    def of_sheet(cls, sheet_json: str | os.PathLike) -> "Layout":
        """The layout a patient's ``sheet.json`` belongs to (``<results>/<patient>/sheet.json``)."""
        return cls(os.path.dirname(os.path.dirname(os.fspath(sheet_json))))

    # ------------------------------------------------------------------ per patient
    def patient(self, pid: str) -> str:
        return f"{self.root}/{pid}"

    def sheet(self, pid: str) -> str:
        return f"{self.root}/{pid}/sheet.json"

    def image(self, pid: str, visit: str, series: str, suffix: str = ".nii.gz") -> str:
        """An ingested image; ``suffix`` ``.qc.json``, ``.png``, ``.label.nii.gz`` or
        ``.label.qc.json`` for its companions."""
        return f"{self.root}/{pid}/ingest/imaging/{visit}/{series}{suffix}"

    def variants(self, pid: str, kind: str, suffix: str = ".tsv") -> str:
        return f"{self.root}/{pid}/ingest/{kind}{suffix}"

    def labs(self, pid: str, suffix: str = ".tsv") -> str:
        return f"{self.root}/{pid}/ingest/labs{suffix}"

    def ingest_qc(self, pid: str) -> str:
        return f"{self.root}/{pid}/ingest/qc.json"

    def segment(self, pid: str, visit: str) -> str:
        return f"{self.root}/{pid}/segment/{visit}"

    def pgx(self, pid: str, suffix: str = ".json") -> str:
        return f"{self.root}/{pid}/pgx/record{suffix}"

    def estimate(self, pid: str) -> str:
        return f"{self.root}/{pid}/estimate"

    def simulate(self, pid: str) -> str:
        return f"{self.root}/{pid}/simulate"

    def twin(self, pid: str) -> str:
        """The twin artefact's folder (its entry point is ``twin.json`` inside)."""
        return f"{self.root}/{pid}/twin"

    def twin_json(self, pid: str) -> str:
        return f"{self.root}/{pid}/twin/twin.json"

    def report(self, pid: str) -> str:
        return f"{self.root}/{pid}/report.html"

    # ------------------------------------------------------------------ cohort and run
    def cohort(self, name: str) -> str:
        return f"{self.root}/cohort/{name}"

    def trial(self, name: str, rel: str = "") -> str:
        """A file (or with ``rel=""`` the folder) of the in-silico trial ``name``."""
        return f"{self.root}/trials/{name}/{rel}" if rel else f"{self.root}/trials/{name}"

    def trial_chunk(self, name: str, arm: str, chunk: int | str) -> str:
        """The patients of one simulation job of a trial (one chunk of one arm)."""
        return self.trial(name, f"chunks/{arm}/{chunk}.parquet")

    def pipeline_info(self, name: str) -> str:
        return f"{self.root}/pipeline_info/{name}"

    def log(self, rule: str, name: str | None = None) -> str:
        """``logs/<rule>/<name>.log`` for a per-patient job, ``logs/<rule>.log`` for a cohort job."""
        return f"{self.root}/logs/{rule}/{name}.log" if name else f"{self.root}/logs/{rule}.log"

    def benchmark(self, rule: str, name: str | None = None) -> str:
        """Snakemake's benchmark table of a job, beside its log under ``benchmarks/``."""
        return f"{self.root}/benchmarks/{rule}/{name}.tsv" if name else f"{self.root}/benchmarks/{rule}.tsv"
