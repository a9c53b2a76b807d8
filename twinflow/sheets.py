"""The input contract: loading and checking the three cohort sheets.

``config/config.yaml`` names three tab-separated sheets (see ``config/README.md``):

* ``patients.tsv``   one row per patient
* ``imaging.tsv``    one row per image (a NIfTI/NRRD file or a DICOM directory)
* ``treatments.tsv`` one row per administration (radiotherapy fraction or drug dose)

The Snakemake layer (``rules/common.smk``) validates each sheet against its JSON schema in
``config/schemas/`` with :func:`twinflow.schema.validate_frame`; this module reads the sheets and makes
the checks a schema cannot (unique ids, dates, cross-sheet references, paths).

Two kinds of problem are distinguished:

* *structural* problems (a sheet is missing or unreadable, a required column is absent, a
  patient id that is not a safe folder name) make the whole cohort unusable: they raise
  :class:`~twinflow.errors.InputError` at once, before any job runs;
* *patient* problems (a malformed date, a duplicate patient id, an image listed twice ...)
  concern one patient only: they are collected in :attr:`Cohort.invalid`, the workflow
  turns them into one failing job for that patient with the message, and with
  ``--keep-going`` every other patient finishes.

Everything here is linear in the number of rows: sheets are read once, rows are grouped by
patient once, and look-ups are dictionary look-ups.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from twinflow.errors import InputError

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""Patient ids, visit labels and series names become folder and file names: keep them safe."""

PATIENT_COLUMNS = ("patient_id", "twin_model", "sex", "age_years", "height_cm", "weight_kg")
PATIENT_OPTIONAL = ("germline_vcf", "germline_sample", "somatic_vcf", "labs", "labs_subject",
                    "pgx_missing_as_reference")
PATIENT_NUMERIC = ("age_years", "height_cm", "weight_kg")
IMAGING_COLUMNS = ("patient_id", "visit", "date", "series", "path")
IMAGING_OPTIONAL = ("label_path", "dicom_series", "roi")
TREATMENT_COLUMNS = ("patient_id", "date", "kind", "agent", "dose", "unit")
TREATMENT_NUMERIC = ("dose",)

PATH_COLUMNS = {"patients": ("germline_vcf", "somatic_vcf", "labs"), "imaging": ("path", "label_path")}


def read_sheet(path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = (),
               numeric: tuple[str, ...] = (), *, display: str | None = None,
               problems: dict[int, str] | None = None) -> pd.DataFrame:
    """Read a TSV sheet as strings; empty cells become missing; numeric columns are coerced.

    Raises InputError for a missing/unreadable sheet or missing required columns (problems of
    the sheet).  A value that is not a number in a numeric column is a problem of its row: it
    becomes missing and, when ``problems`` is given, is recorded there (row position ->
    message); without ``problems`` it raises.
    """
    path = Path(path)
    display = display or str(path)
    if not path.is_file():
        raise InputError("sheet not found", path=display)
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None,
                         skip_blank_lines=True)
    except Exception as exc:  # pandas raises several types for malformed TSV
        raise InputError(f"cannot read sheet as tab-separated text ({type(exc).__name__}: {exc})",
                         path=display) from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)} "
                         f"(columns found: {', '.join(df.columns) or 'none'})", path=display)
    for col in optional:
        if col not in df.columns:
            df[col] = ""
    for col in df.columns:
        df[col] = df[col].str.strip()
    df = df.replace({"": None})
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = (df[col].notna() & values.isna()).to_numpy()
        for i in bad.nonzero()[0]:
            msg = f"column {col} must be a number, got {df[col].iloc[i]!r}"
            if problems is None:
                pid = df["patient_id"].iloc[i] if "patient_id" in df.columns else None
                raise InputError(f"row {i + 2}: {msg}", patient=pid, path=display)
            problems.setdefault(int(i), msg)
        df[col] = values
    return df


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts of Python values: what ``frame.to_dict("records")``
    returns, built column-wise (``to_dict`` boxes every cell on its own: ~1 s per 1000
    patients on every Snakemake call)."""
    cols = list(frame.columns)
    return [dict(zip(cols, row)) for row in zip(*(frame[c].tolist() for c in cols))]


def parse_date(value: Any) -> _dt.date:
    """Parse an ISO 8601 calendar date (``YYYY-MM-DD``; a time part is accepted and dropped)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        raise ValueError("date is empty")
    text = str(value).strip()
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?", text)
    if not m:
        raise ValueError(f"malformed date {text!r} (expected ISO 8601, YYYY-MM-DD)")
    try:
        return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise ValueError(f"malformed date {text!r} ({exc})") from None


def check_safe_id(value: Any, what: str, *, sheet: str, row: int) -> str:
    text = "" if value is None else str(value)
    if not ID_RE.match(text):
        raise InputError(f"row {row}: {what} {text!r} is not allowed: use 1-64 letters, digits, "
                         "'_' or '-' (it becomes a folder name under the results folder)", path=sheet)
    return text


def resolve(value: str, sheet_dir: Path, workdir: Path) -> str:
    """Path of a sheet entry for Snakemake: relative to the sheet's folder, expressed relative
    to the working directory when it lies below it (absolute otherwise)."""
    # plain string operations (called once per path cell: pathlib cost ~1 s per 1000 patients)
    p = os.path.normpath(value if os.path.isabs(value) else os.path.join(sheet_dir, value))
    base = os.path.normpath(str(workdir))
    if p == base:
        return "."
    prefix = base if base.endswith(os.sep) else base + os.sep
    return p[len(prefix):] if p.startswith(prefix) else p


@dataclass
class ImageRow:
    patient_id: str
    visit: str
    date: str
    series: str
    path: str            # for Snakemake (relative to the working directory where possible)
    path_display: str    # as written in the sheet
    label_path: str | None = None
    label_display: str | None = None
    dicom_series: str | None = None
    roi: str | None = None


#: keys of a patient record that say how a row was spelled, not what the data are: they
#: reach messages and reports but never decide whether a job re-runs
DISPLAY_KEYS = ("path_display", "label_display", "germline_vcf_display", "somatic_vcf_display", "labs_display")


def _without_display(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_display(v) for k, v in obj.items() if k not in DISPLAY_KEYS}
    if isinstance(obj, list):
        return [_without_display(v) for v in obj]
    return obj


@dataclass
class Cohort:
    patients: dict[str, dict[str, Any]]                 # patient_id -> row (paths resolved)
    images: dict[str, list[ImageRow]]                    # patient_id -> rows, sorted (date, visit, series)
    treatments: dict[str, list[dict[str, Any]]]          # patient_id -> rows, sorted by date
    invalid: dict[str, str] = field(default_factory=dict)  # patient_id -> message
    sheets: dict[str, str] = field(default_factory=dict)   # role -> sheet path
    frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)  # role -> sheet as read
    model_sheets: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)  # sheet -> pid -> rows

    @property
    def patient_ids(self) -> list[str]:
        return sorted(self.patients)

    @property
    def valid_ids(self) -> list[str]:
        return [p for p in self.patient_ids if p not in self.invalid]

    def image(self, pid: str, visit: str, series: str) -> ImageRow:
        for row in self.images.get(pid, ()):
            if row.visit == visit and row.series == series:
                return row
        raise KeyError((pid, visit, series))

    def record(self, pid: str) -> dict[str, Any]:
        """The patient's data as the workflow's jobs see it (``<results>/<patient>/sheet.json``):
        its patients.tsv row, imaging and treatment rows and the rows of its model's own
        sheets, with paths resolved (and as written, ``*_display``), plus its sheet problem,
        if any."""
        return {
            "patient_id": pid,
            "row": self.patients[pid],
            "images": [dict(r.__dict__) for r in self.images.get(pid, [])],
            "treatments": [{k: v for k, v in t.items() if k != "row"} for t in self.treatments.get(pid, [])],
            "sheets": {name: rows[pid] for name, rows in sorted(self.model_sheets.items()) if pid in rows},
            "problem": self.invalid.get(pid),
        }

    def digest(self, pid: str) -> str:
        """A short digest of what the patient's rows say (not how they are spelled: paths as
        written and row numbers are left out), so that a changed row re-runs that patient and
        nothing else."""
        import hashlib
        import json

        text = json.dumps(_without_display(self.record(pid)), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


SHEETS = ("patients", "imaging", "treatments")


def load_cohort(patients_tsv: str | Path, imaging_tsv: str | Path, treatments_tsv: str | Path,
                workdir: str | Path = ".", *, schema_dir: str | Path | None = None,
                models: Any = None, model_sheets: dict[str, tuple[str, dict | None]] | None = None) -> Cohort:
    """Read and check the three sheets (see the module docstring for the error policy).

    ``schema_dir`` holds ``<sheet>.schema.yaml`` JSON schemas of one row of each sheet
    (``config/schemas``); a row that violates its schema fails its patient.  ``models`` is the
    set of known ``twin_model`` names (None: not checked).  ``model_sheets`` maps the extra
    sheets of the twin models (config ``sheets:`` keys other than the three) to their file and
    the JSON schema of one row (see :func:`twinflow.workflow.load`).
    """
    from twinflow.schema import load_schema, row_problems

    workdir = Path(os.path.abspath(workdir))
    sheets = {"patients": str(patients_tsv), "imaging": str(imaging_tsv), "treatments": str(treatments_tsv)}
    row_issues: dict[str, dict[int, str]] = {k: {} for k in SHEETS}
    pat = read_sheet(patients_tsv, PATIENT_COLUMNS, PATIENT_OPTIONAL, PATIENT_NUMERIC, display=sheets["patients"],
                     problems=row_issues["patients"])
    img = read_sheet(imaging_tsv, IMAGING_COLUMNS, IMAGING_OPTIONAL, display=sheets["imaging"],
                     problems=row_issues["imaging"])
    trt = read_sheet(treatments_tsv, TREATMENT_COLUMNS, (), TREATMENT_NUMERIC, display=sheets["treatments"],
                     problems=row_issues["treatments"])
    frames = {"patients": pat, "imaging": img, "treatments": trt}
    if not len(pat):
        raise InputError("no patients: the sheet has a header but no rows (an empty cohort has nothing to run)",
                         path=sheets["patients"])
    if schema_dir is not None:
        for name, frame in frames.items():
            schema = load_schema(str(Path(schema_dir) / f"{name}.schema.yaml"))
            try:
                found = row_problems(frame, schema)
            except ValueError as exc:
                raise InputError(str(exc), path=sheets[name]) from None
            for i, msg in found.items():
                row_issues[name].setdefault(i, msg)
    invalid: dict[str, str] = {}

    def flag(pid: str, problem: str, sheet: str) -> None:
        invalid.setdefault(pid, str(InputError(problem, patient=pid, path=sheet)))

    def row_ok(name: str, i: int, pid: str) -> bool:
        """False (and the patient flagged) if row ``i`` of sheet ``name`` has a value problem."""
        msg = row_issues[name].get(i)
        if msg is not None:
            flag(pid, f"row {i + 2}, {msg}", sheets[name])
        return msg is None

    pdir = Path(os.path.abspath(patients_tsv)).parent
    patients: dict[str, dict[str, Any]] = {}
    for i, rec in enumerate(records(pat)):
        pid = check_safe_id(rec["patient_id"], "patient_id", sheet=sheets["patients"], row=i + 2)
        if pid in patients:
            flag(pid, f"row {i + 2}: duplicate patient_id (first listed on an earlier row)", sheets["patients"])
            continue
        row = {k: (None if v is None or (isinstance(v, float) and pd.isna(v)) else v) for k, v in rec.items()}
        row_ok("patients", i, pid)
        for col in PATIENT_COLUMNS:
            if row.get(col) is None:
                flag(pid, f"row {i + 2}: required value {col} is empty", sheets["patients"])
        if models is not None and row.get("twin_model") is not None and row["twin_model"] not in models:
            from twinflow.models.registry import unknown_message

            flag(pid, f"row {i + 2}, column twin_model: {unknown_message(row['twin_model'])}", sheets["patients"])
        for col in PATH_COLUMNS["patients"]:
            if row.get(col):
                row[col + "_display"] = row[col]
                row[col] = resolve(row[col], pdir, workdir)
        if row.get("germline_sample") and not row.get("germline_vcf"):
            flag(pid, f"row {i + 2}: germline_sample is set but germline_vcf is empty", sheets["patients"])
        patients[pid] = row

    def known(pid: str, sheet: str, r: int) -> None:
        if pid not in patients:
            raise InputError(f"row {r}: patient_id {pid!r} is not in the patients sheet", path=sheet)

    idir = Path(os.path.abspath(imaging_tsv)).parent
    images: dict[str, list[ImageRow]] = {}
    seen: set[tuple[str, str, str]] = set()
    visit_dates: dict[tuple[str, str], str] = {}
    for i, rec in enumerate(records(img)):
        r = i + 2
        pid = check_safe_id(rec["patient_id"], "patient_id", sheet=sheets["imaging"], row=r)
        known(pid, sheets["imaging"], r)
        visit = check_safe_id(rec["visit"], "visit", sheet=sheets["imaging"], row=r)
        series = check_safe_id(rec["series"], "series", sheet=sheets["imaging"], row=r)
        if not row_ok("imaging", i, pid):
            continue
        if not rec.get("path"):
            flag(pid, f"row {r}: path is empty", sheets["imaging"])
            continue
        try:
            date = parse_date(rec["date"]).isoformat()
        except ValueError as exc:
            flag(pid, f"row {r}: {exc}", sheets["imaging"])
            continue
        key = (pid, visit, series)
        if key in seen:
            flag(pid, f"row {r}: series {series} of visit {visit} is listed twice", sheets["imaging"])
            continue
        seen.add(key)
        if visit_dates.setdefault((pid, visit), date) != date:
            flag(pid, f"row {r}: visit {visit} has two different dates "
                      f"({visit_dates[(pid, visit)]} and {date})", sheets["imaging"])
            continue
        label = rec.get("label_path")
        images.setdefault(pid, []).append(ImageRow(
            patient_id=pid, visit=visit, date=date, series=series,
            path=resolve(rec["path"], idir, workdir), path_display=rec["path"],
            label_path=resolve(label, idir, workdir) if label else None,
            label_display=label or None,
            dicom_series=rec.get("dicom_series") or None, roi=rec.get("roi") or None))
    for rows in images.values():
        rows.sort(key=lambda x: (x.date, x.visit, x.series))

    treatments: dict[str, list[dict[str, Any]]] = {}
    for i, rec in enumerate(records(trt)):
        r = i + 2
        pid = check_safe_id(rec["patient_id"], "patient_id", sheet=sheets["treatments"], row=r)
        known(pid, sheets["treatments"], r)
        if not row_ok("treatments", i, pid):
            continue
        try:
            date = parse_date(rec["date"]).isoformat()
        except ValueError as exc:
            flag(pid, f"row {r}: {exc}", sheets["treatments"])
            continue
        dose = rec.get("dose")
        if dose is None or pd.isna(dose) or float(dose) <= 0:
            flag(pid, f"row {r}: dose must be a positive number", sheets["treatments"])
            continue
        treatments.setdefault(pid, []).append({
            "date": date, "kind": rec["kind"], "agent": rec["agent"],
            "dose": float(dose), "unit": rec["unit"], "row": r})
    for rows in treatments.values():
        rows.sort(key=lambda x: (x["date"], x["kind"], x["agent"], x["row"]))

    extra: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, (path, schema) in sorted((model_sheets or {}).items()):
        sheets[name] = str(path)
        props = (schema or {}).get("properties") or {}
        numeric = tuple(c for c, sub in props.items() if isinstance(sub, dict) and
                        set(sub.get("type") if isinstance(sub.get("type"), list) else [sub.get("type")]) & {"number", "integer"})
        issues: dict[int, str] = {}
        frame = read_sheet(path, ("patient_id",), tuple(props), numeric, display=str(path), problems=issues)
        frames[name] = frame
        try:
            found = {**(row_problems(frame, schema) if schema else {}), **issues}
        except ValueError as exc:
            raise InputError(str(exc), path=str(path)) from None
        rows_by_patient: dict[str, list[dict[str, Any]]] = {}
        for i, rec in enumerate(records(frame)):
            pid = check_safe_id(rec["patient_id"], "patient_id", sheet=str(path), row=i + 2)
            known(pid, str(path), i + 2)
            if i in found:
                flag(pid, f"row {i + 2}, {found[i]}", str(path))
                continue
            rows_by_patient.setdefault(pid, []).append(
                {k: (None if v is None or (isinstance(v, float) and pd.isna(v)) else v) for k, v in rec.items()})
        extra[name] = rows_by_patient

    return Cohort(patients=patients, images=images, treatments=treatments, invalid=invalid, sheets=sheets,
                  frames=frames, model_sheets=extra)
