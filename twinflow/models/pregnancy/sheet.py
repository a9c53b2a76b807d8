"""``pregnancies.tsv``: one row per pregnancy (config ``sheets.pregnancies``; optional).

Columns (``config/schemas/pregnancies.schema.yaml`` validates the types; this module makes the
checks a schema cannot and turns a row into :class:`PregnancyRecord`):

=======================  ======================================================================
patient_id               as in patients.tsv (age, height, weight come from there)
pregnancy                label of this pregnancy (letters, digits, ``_`` ``-``)
fetuses                  number of fetuses (the FMF model here is for singletons: 1)
ethnicity                white, black, south_asian, east_asian, mixed
smoker                   yes / no (and every other yes/no column)
conception               spontaneous, ovulation_induction, ivf
chronic_hypertension     yes / no
diabetes                 none, type1, type2, type2_insulin
sle, aps                 systemic lupus erythematosus, antiphospholipid syndrome
mother_had_pe            the woman's mother had pre-eclampsia
parous                   a previous pregnancy reached 24 weeks
previous_pe              that pregnancy had PE (parous only)
previous_ga_weeks        gestational age at the previous delivery (parous only)
previous_delivery_date   ISO date of the previous delivery (parous without previous PE)
crl_mm, crl_date         dating by crown-rump length (or:)
dating_ga_weeks,         dating by a gestational age on a date
  dating_date
delivery_date,           outcome when known
  delivery_ga_weeks,
  pe_outcome             none, preterm (delivery with PE < 37 weeks), term
=======================  ======================================================================

Every problem raises :class:`twinflow.errors.InputError` naming the patient, the sheet and the
row; ``missing`` rows (a ``pregnancy`` twin without a sheet row) are an error of that patient.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from twinflow.errors import InputError

from .dating import Dating
from .screening import CONCEPTIONS, DIABETES, ETHNICITIES

COLUMNS = ("patient_id", "pregnancy", "fetuses", "ethnicity", "smoker", "conception", "chronic_hypertension",
           "diabetes", "sle", "aps", "mother_had_pe", "parous")
OPTIONAL = ("previous_pe", "previous_ga_weeks", "previous_delivery_date", "crl_mm", "crl_date", "dating_ga_weeks",
            "dating_date", "delivery_date", "delivery_ga_weeks", "pe_outcome")
BOOLEANS = ("smoker", "chronic_hypertension", "sle", "aps", "mother_had_pe", "parous", "previous_pe")
PE_OUTCOMES = ("none", "preterm", "term")


@dataclass
class PregnancyRecord:
    patient_id: str
    pregnancy: str
    fetuses: int
    ethnicity: str
    smoker: bool
    conception: str
    chronic_hypertension: bool
    diabetes: str
    sle: bool
    aps: bool
    mother_had_pe: bool
    parous: bool
    previous_pe: bool = False
    previous_ga_weeks: float | None = None
    previous_delivery_date: str | None = None
    crl_mm: float | None = None
    crl_date: str | None = None
    dating_ga_weeks: float | None = None
    dating_date: str | None = None
    delivery_date: str | None = None
    delivery_ga_weeks: float | None = None
    pe_outcome: str | None = None

    def dating(self) -> Dating:
        if self.crl_mm is not None:
            return Dating(crl_mm=self.crl_mm, crl_date=self.crl_date)
        return Dating(ga_weeks=self.dating_ga_weeks, ga_date=self.dating_date)

    def interval_years(self) -> float | None:
        if not self.parous or self.previous_pe or not self.previous_delivery_date:
            return None
        return self.dating().years_since(self.previous_delivery_date)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _date(v: str, col: str, err) -> str:
    try:
        return dt.date.fromisoformat(v[:10]).isoformat()
    except ValueError:
        raise err(f"{col} {v!r} is not an ISO date (YYYY-MM-DD)") from None


def parse_row(rec: dict[str, Any], line: int | None, display: str) -> PregnancyRecord:
    """A pregnancies.tsv row (``line``: its sheet row number for messages, or None: the
    pregnancy's label names it)."""
    pid = str(rec.get("patient_id") or "")

    def err(problem: str) -> InputError:
        where = f"row {line}" if line is not None else f"pregnancy {rec.get('pregnancy')!r}"
        return InputError(f"{where}: {problem}", patient=pid or None, path=display)

    def text(col):
        v = rec.get(col)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == "" else str(v).strip()

    def boolean(col, default=None):
        v = text(col)
        if v is None:
            if default is None:
                raise err(f"{col} is empty (yes or no)")
            return default
        if v.lower() not in ("yes", "no"):
            raise err(f"{col} must be yes or no, got {v!r}")
        return v.lower() == "yes"

    def number(col, required=False):
        v = text(col)
        if v is None:
            if required:
                raise err(f"{col} is empty")
            return None
        try:
            x = float(v)
        except ValueError:
            raise err(f"{col} must be a number, got {v!r}") from None
        if not math.isfinite(x):
            raise err(f"{col} must be finite, got {v!r}")
        return x

    def choice(col, allowed):
        v = (text(col) or "").lower()
        if v not in allowed:
            raise err(f"{col} must be one of {', '.join(allowed)}, got {text(col)!r}")
        return v

    for col in ("patient_id", "pregnancy"):
        if text(col) is None:
            raise err(f"{col} is empty")
    fetuses = number("fetuses", required=True)
    if fetuses != int(fetuses) or fetuses < 1:
        raise err(f"fetuses must be a whole number >= 1, got {text('fetuses')!r}")
    parous = boolean("parous")
    previous_pe = boolean("previous_pe", default=False)
    if previous_pe and not parous:
        raise err("previous_pe is yes but parous is no")
    r = PregnancyRecord(
        patient_id=pid, pregnancy=text("pregnancy"), fetuses=int(fetuses), ethnicity=choice("ethnicity", ETHNICITIES),
        smoker=boolean("smoker"), conception=choice("conception", CONCEPTIONS),
        chronic_hypertension=boolean("chronic_hypertension"), diabetes=choice("diabetes", DIABETES),
        sle=boolean("sle"), aps=boolean("aps"), mother_had_pe=boolean("mother_had_pe"), parous=parous,
        previous_pe=previous_pe, previous_ga_weeks=number("previous_ga_weeks", required=parous),
        previous_delivery_date=_date(text("previous_delivery_date"), "previous_delivery_date", err)
        if text("previous_delivery_date") else None,
        crl_mm=number("crl_mm"), crl_date=_date(text("crl_date"), "crl_date", err) if text("crl_date") else None,
        dating_ga_weeks=number("dating_ga_weeks"),
        dating_date=_date(text("dating_date"), "dating_date", err) if text("dating_date") else None,
        delivery_date=_date(text("delivery_date"), "delivery_date", err) if text("delivery_date") else None,
        delivery_ga_weeks=number("delivery_ga_weeks"),
        pe_outcome=choice("pe_outcome", PE_OUTCOMES) if text("pe_outcome") else None)
    if parous and not previous_pe and not r.previous_delivery_date:
        raise err("a parous woman without previous PE needs previous_delivery_date (for the interpregnancy interval)")
    if parous and not (16.0 <= r.previous_ga_weeks <= 45.0):
        raise err(f"previous_ga_weeks {r.previous_ga_weeks:g} is not a plausible gestational age at delivery")
    has_crl = r.crl_mm is not None or r.crl_date is not None
    has_ga = r.dating_ga_weeks is not None or r.dating_date is not None
    if has_crl and not (r.crl_mm is not None and r.crl_date):
        raise err("crl_mm and crl_date go together")
    if has_ga and not (r.dating_ga_weeks is not None and r.dating_date):
        raise err("dating_ga_weeks and dating_date go together")
    if not has_crl and not has_ga:
        raise err("no dating: give crl_mm with crl_date, or dating_ga_weeks with dating_date")
    try:
        r.dating()
    except ValueError as exc:
        raise err(str(exc)) from None
    if parous and not previous_pe and r.interval_years() <= 0:
        raise err("previous_delivery_date is not before the start of this pregnancy")
    return r


def read_pregnancies(path: str | Path, display: str | None = None) -> dict[str, list[PregnancyRecord]]:
    """patient_id -> that patient's pregnancies (sheet order)."""
    display = display or str(path)
    p = Path(path)
    if not p.is_file():
        raise InputError("sheet not found", path=display)
    try:
        df = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:
        raise InputError(f"cannot read as tab-separated text ({type(exc).__name__})", path=display) from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)}", path=display)
    unknown = [c for c in df.columns if c not in COLUMNS + OPTIONAL]
    if unknown:
        raise InputError(f"unknown column(s) {', '.join(unknown)}", path=display)
    out: dict[str, list[PregnancyRecord]] = {}
    seen = set()
    for i, rec in enumerate(df.to_dict("records")):
        r = parse_row(rec, i + 2, display)
        if (r.patient_id, r.pregnancy) in seen:
            raise InputError(f"row {i + 2}: duplicate pregnancy {r.pregnancy!r}", patient=r.patient_id, path=display)
        seen.add((r.patient_id, r.pregnancy))
        out.setdefault(r.patient_id, []).append(r)
    return out


def pregnancy_of(path: str | Path, patient_id: str, display: str | None = None,
                 label: str | None = None) -> PregnancyRecord:
    """The (current: last listed, or ``label``) pregnancy of one patient."""
    rows = read_pregnancies(path, display).get(patient_id)
    if not rows:
        raise InputError("no row in the pregnancies sheet for this patient", patient=patient_id,
                         path=display or str(path))
    if label is not None:
        match = [r for r in rows if r.pregnancy == label]
        if not match:
            raise InputError(f"no pregnancy {label!r} in the pregnancies sheet", patient=patient_id,
                             path=display or str(path))
        return match[0]
    return rows[-1]


def select_pregnancy(rows: list[dict[str, Any]], patient_id: str, visit_date: str | None,
                     display: str = "pregnancies.tsv") -> PregnancyRecord:
    """Of a patient's pregnancies.tsv rows, the pregnancy a visit on ``visit_date`` belongs to:
    the only row, or the one whose course (start by its dating to its delivery date, else 44
    weeks) covers the date."""
    recs = [parse_row(dict(r, patient_id=patient_id), None, display) for r in rows]
    labels = [r.pregnancy for r in recs]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise InputError(f"pregnancy {dup[0]!r} is listed twice", patient=patient_id, path=display)
    if not recs:
        raise InputError("no row in the pregnancies sheet for this patient (config sheets.pregnancies)",
                         patient=patient_id, path=display)
    if len(recs) == 1:
        return recs[0]
    when = dt.date.fromisoformat(str(visit_date)[:10]) if visit_date else None
    hits = []
    for r in recs:
        start = r.dating().start_date()
        end = dt.date.fromisoformat(r.delivery_date) if r.delivery_date else start + dt.timedelta(weeks=44)
        if when is not None and start <= when <= end:
            hits.append(r)
    if len(hits) != 1:
        raise InputError(f"{len(recs)} pregnancies ({', '.join(labels)}) and {len(hits) or 'none'} of them "
                         f"cover the first Doppler visit ({visit_date}): the visits must fall in one pregnancy",
                         patient=patient_id, path=display)
    return hits[0]
