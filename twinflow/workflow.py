"""What the Snakemake workflow needs from twinflow, kept out of the rule files so that it is
unit-tested: loading and checking the configuration and sheets (:func:`load`), the files each
per-patient job reads (:class:`Plan`, behind the rules' input functions) and the glue of the
thin scripts in ``scripts/`` (:func:`run_script`, :func:`patient_context`).

A job's failure because of bad input prints exactly one line (``patient P: file: problem``)
to stderr and to the job's log, and exits non-zero; Snakemake then removes the job's
outputs (every writer is atomic, so nothing half-written is left) and, with
``--keep-going``, goes on with the other patients.
"""

from __future__ import annotations

import logging
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from twinflow.config import ConfigError, check_config, stage_config
from twinflow.errors import InputError
from twinflow.layout import Layout
from twinflow.sheets import SHEETS, Cohort, load_cohort


def load(config: dict[str, Any], *, schema_dir: str | Path, workdir: str | Path = ".") -> tuple[dict, Cohort]:
    """The checked configuration (defaults filled in) and the cohort of its sheets.

    Raises :class:`~twinflow.errors.InputError` for a problem that stops the whole run: the
    configuration, a missing or unreadable sheet, a missing column, an unsafe id, a patient
    unknown to patients.tsv, an empty cohort.  A problem of one patient's rows is recorded in
    ``cohort.invalid`` instead: that patient fails alone."""
    import yaml

    from twinflow.models import registry

    with open(Path(schema_dir) / "config.schema.yaml", encoding="utf-8") as fh:
        cfg = check_config(config, yaml.safe_load(fh), models=registry)
    from twinflow.trials.config import check_trials

    cfg["trials"] = check_trials(cfg.get("trials"), registry)
    sheets = cfg["sheets"]
    declared = registry.sheet_schemas()
    extra = {}
    for name in sorted(set(sheets) - set(SHEETS)):
        if name not in declared:
            import difflib

            close = difflib.get_close_matches(name, sorted(set(declared) | set(SHEETS)), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else \
                f" (sheets of the registered models: {', '.join(sorted(declared)) or 'none'})"
            raise ConfigError(f"sheets.{name}: no twin model reads a sheet of this name{hint}", path="config")
        extra[name] = (sheets[name], declared[name])
    cohort = load_cohort(sheets["patients"], sheets["imaging"], sheets["treatments"], workdir=workdir,
                         schema_dir=schema_dir, models=registry.names(), model_sheets=extra)
    return cfg, cohort


class Plan:
    """The files of a cohort's per-patient jobs, asked by the rules' input functions.

    ``produced`` are files a rule of the workflow makes before ingest needs them (the demo
    generator): they count as present."""

    STAGES = ("segment", "estimate", "simulate", "twin", "report")

    def __init__(self, cohort: Cohort, layout: Layout, config: dict[str, Any], produced: Iterable[str] = ()):
        self.cohort = cohort
        self.L = layout
        self.config = config
        self._produced = {os.path.normpath(p) for p in produced}
        self._produced_dirs: dict[str, list[str]] = {}
        for f in sorted(self._produced):
            self._produced_dirs.setdefault(os.path.dirname(f), []).append(f)
        self._segment_visits: dict[str, list[str]] = {}
        self._contexts: dict[str, Any] = {}

    # ------------------------------------------------------------------ models
    def model_name(self, pid: str) -> str:
        return self.cohort.patients[pid]["twin_model"]

    def model(self, pid: str):
        from twinflow.models import registry

        return registry.get(self.model_name(pid))

    def models_used(self) -> list[str]:
        """Models of the patients whose sheet rows are valid, sorted."""
        return sorted({self.model_name(p) for p in self.cohort.valid_ids})

    def stage_config(self, pid: str, stage: str) -> dict[str, Any]:
        return stage_config(self.config, self.model_name(pid), stage)

    def stage_code(self, pid: str, stage: str) -> str:
        return _stage_digest(self.model_name(pid), stage)

    def resolved_config(self, pid: str) -> dict[str, Any]:
        """The part of the configuration a patient's twin records (its model's section and ingest)."""
        name = self.model_name(pid)
        return {"models": {name: (self.config.get("models") or {}).get(name) or {}},
                "ingest": self.config.get("ingest", {})}

    def context(self, pid: str):
        """The patient's :class:`~twinflow.models.base.PatientContext` (built once per patient:
        input functions ask for it several times per Snakemake call)."""
        if pid not in self._contexts:
            from twinflow.models.base import PatientContext

            self._contexts[pid] = PatientContext.from_record(self.cohort.record(pid), self.L)
        return self._contexts[pid]

    # ------------------------------------------------------------------ raw inputs
    def available(self, path: str | None) -> list[str]:
        """A raw input as a job input if it exists (or a rule makes it); otherwise nothing, and
        the job reports the missing file for that patient alone.  A DICOM directory that a rule
        makes is represented by the files it will hold."""
        if not path:
            return []
        if path in self._produced:
            return [path]
        if path in self._produced_dirs:
            return list(self._produced_dirs[path])
        return [path] if os.path.exists(path) else []

    def image_params(self, pid: str, visit: str, series: str) -> dict[str, Any]:
        """What an image's ingest job needs of its row (what the data are: resolved paths)."""
        r = self.cohort.image(pid, visit, series)
        return {"path": r.path, "label_path": r.label_path, "date": r.date, "dicom_series": r.dicom_series}

    def file_params(self, pid: str, key: str) -> dict[str, Any]:
        """A patient-level raw input (germline_vcf, somatic_vcf, labs) and its selector."""
        row = self.cohort.patients[pid]
        sel = {"germline_vcf": "germline_sample", "labs": "labs_subject"}.get(key)
        return {"path": row.get(key), "select": row.get(sel) if sel else None}

    # ------------------------------------------------------------------ per-patient inputs
    def ingest_outputs(self, pid: str) -> list[str]:
        """Every ingest output of one patient (the inputs of its QC summary)."""
        if pid in self.cohort.invalid:
            return []
        p, L = self.cohort.patients[pid], self.L
        raw = self.model(pid).raw_series
        out = []
        for row in self.cohort.images.get(pid, []):
            if row.series in raw:
                continue                  # read by the model in its original format
            out += [L.image(pid, row.visit, row.series, s) for s in (".nii.gz", ".qc.json", ".png")]
            if row.label_path:
                out += [L.image(pid, row.visit, row.series, s) for s in (".label.nii.gz", ".label.qc.json")]
        for kind in ("germline", "somatic"):
            if p.get(f"{kind}_vcf"):
                out += [L.variants(pid, kind), L.variants(pid, kind, ".qc.json")]
        if p.get("labs"):
            out += [L.labs(pid), L.labs(pid, ".qc.json")]
        return out

    def segment_visits(self, pid: str) -> list[str]:
        if pid not in self._segment_visits:
            self._segment_visits[pid] = list(self.model(pid).segment_visits(self.context(pid)))
        return self._segment_visits[pid]

    def visit_images(self, pid: str, visit: str) -> list[str]:
        """A visit's ingested images and labels (an expert contour folder of a DICOM cine: the
        raw DICOM directory and the folder, which the model reads directly; a raw series of the
        model: the raw file)."""
        raw = self.model(pid).raw_series
        out = []
        for row in self.cohort.images.get(pid, []):
            if row.visit == visit and row.series in raw:
                out += self.available(row.path)
            elif row.visit == visit:
                out.append(self.L.image(pid, visit, row.series))
                if row.label_path:
                    if os.path.isdir(row.label_path):
                        out += [row.path, row.label_path]
                    else:
                        out.append(self.L.image(pid, visit, row.series, ".label.nii.gz"))
        return out

    def segment_inputs(self, pid: str, visit: str) -> list[str]:
        out = self.visit_images(pid, visit)
        if self.model(pid).uses_previous_segmentation:
            visits = self.segment_visits(pid)
            i = visits.index(visit)
            if i > 0:
                out.append(self.L.segment(pid, visits[i - 1]))
        return out

    def pgx_inputs(self, pid: str) -> list[str]:
        p, L = self.cohort.patients[pid], self.L
        out = [L.ingest_qc(pid)]
        out += [L.variants(pid, kind) for kind in ("germline", "somatic") if p.get(f"{kind}_vcf")]
        if p.get("labs"):
            out.append(L.labs(pid))
        return out

    def estimate_inputs(self, pid: str) -> list[str]:
        out = [self.L.segment(pid, v) for v in self.segment_visits(pid)]
        out += [f for v, _ in self.context(pid).visits() for f in self.visit_images(pid, v)]
        out.append(self.L.pgx(pid))
        if self.cohort.patients[pid].get("labs"):
            out.append(self.L.labs(pid))
        return sorted(set(out))

    def twin_inputs(self, pid: str) -> list[str]:
        L = self.L
        return [L.estimate(pid), L.simulate(pid), L.pgx(pid), L.ingest_qc(pid)] + \
            [L.segment(pid, v) for v in self.segment_visits(pid)]

    # ------------------------------------------------------------------ targets
    def patient_targets(self, pid: str, twins: bool = True) -> list[str]:
        if pid in self.cohort.invalid or not twins:
            return [self.L.ingest_qc(pid)]
        return [self.L.ingest_qc(pid), self.L.twin_json(pid), self.L.report(pid)]


@lru_cache(maxsize=None)
def _stage_digest(name: str, stage: str) -> str:
    from twinflow.models import registry

    return registry.stage_digest(name, stage)


# ---------------------------------------------------------------------- scripts

def run_script(snakemake: Any, main: Callable[[Any], Any]) -> None:
    """Run a script's ``main(snakemake)`` with logging to the job's log; bad input ends the job
    with its one-line message and a non-zero exit, never a traceback."""
    log_path = snakemake.log[0] if len(snakemake.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)
    log = logging.getLogger("twinflow")
    try:
        main(snakemake)
    except InputError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None


def patient_context(snakemake: Any):
    """The :class:`~twinflow.models.base.PatientContext` of a per-patient job: the patient's
    record from its ``sheet.json`` (the job's input ``sheet``) and the stage's config section
    (the job's param ``config``, when the rule has one)."""
    import json

    from twinflow.models.base import PatientContext

    sheet = snakemake.input.sheet
    with open(sheet, encoding="utf-8") as fh:
        record = json.load(fh)
    config = snakemake.params.get("config") or {}
    return PatientContext.from_record(record, Layout.of_sheet(sheet), config)


def write_patient_sheet(cohort: Cohort, pid: str, out: str, log: str | None = None) -> None:
    """``<results>/<patient>/sheet.json``: the patient's record (:meth:`Cohort.record`)."""
    from twinflow.io.atomic import write_json, write_text

    record = cohort.record(pid)
    write_json(out, record)
    if log:
        write_text(log, f"{len(record['images'])} image row(s), {len(record['treatments'])} treatment row(s)"
                        f"{'; sheet problem: ' + record['problem'] if record['problem'] else ''}\n")
