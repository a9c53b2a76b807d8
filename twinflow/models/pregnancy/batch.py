"""``twinflow pe-risk``: first-trimester pre-eclampsia risks for a table of women.

Input: a tab-separated file with exactly the columns of :data:`INPUT_COLUMNS` (extra columns
are an error: a misspelt column would otherwise be silently ignored).  Booleans are ``yes`` or
``no``; an empty measurement (``map_mmhg``, ``uta_pi``, ``plgf``, ``plgf_mom``) is a marker not
measured; empty ``biophysical_ga_weeks`` / ``biochemical_ga_weeks`` mean ``ga_weeks``.
Output: :data:`OUTPUT_COLUMNS`, one row per input row in input order; risks are
probabilities, MoMs are empty where the marker was not measured.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd

from twinflow.errors import InputError

from .screening import (CONCEPTIONS, DEFAULT_CUTOFF, DIABETES, ETHNICITIES, PLGF_ASSAYS, Maternal, Markers,
                        screen)

INPUT_COLUMNS = ("id", "ga_weeks", "biophysical_ga_weeks", "biochemical_ga_weeks", "age_years", "weight_kg",
                 "height_cm", "ethnicity", "smoker", "conception", "chronic_hypertension", "diabetes", "sle", "aps",
                 "mother_had_pe", "parous", "previous_pe", "previous_ga_weeks", "interval_years", "map_mmhg",
                 "uta_pi", "plgf", "plgf_mom", "plgf_assay")
OUTPUT_COLUMNS = ("id", "mom_map", "mom_uta_pi", "mom_plgf", "prior_risk_37", "risk_37", "risk_34", "risk_32",
                  "screen_positive")
BOOLEAN = ("smoker", "chronic_hypertension", "sle", "aps", "mother_had_pe", "parous")
#: gestational ages accepted for the first-trimester medians (days); the model was fitted at
#: 11+0 to 13+6 weeks and the FMF calculator takes 11+0 to 14+1
GA_ACCEPT_DAYS = (77.0, 99.0)


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.6g}"


class _Row:
    def __init__(self, rec: dict[str, str], line: int, path: str):
        self.rec, self.line, self.path = rec, line, path
        self.id = rec.get("id") or f"line {line}"

    def err(self, problem: str) -> InputError:
        return InputError(f"line {self.line}: {problem}", patient=self.id, path=self.path)

    def text(self, col: str) -> str:
        return (self.rec.get(col) or "").strip()

    def number(self, col: str, required: bool = True) -> float | None:
        t = self.text(col)
        if t == "":
            if required:
                raise self.err(f"{col} is empty")
            return None
        try:
            v = float(t)
        except ValueError:
            raise self.err(f"{col} must be a number, got {t!r}") from None
        if not math.isfinite(v):
            raise self.err(f"{col} must be a finite number, got {t!r}")
        return v

    def boolean(self, col: str, default: bool | None = None) -> bool:
        t = self.text(col).lower()
        if t == "" and default is not None:
            return default
        if t not in ("yes", "no"):
            raise self.err(f"{col} must be yes or no, got {self.text(col)!r}")
        return t == "yes"

    def choice(self, col: str, allowed: tuple[str, ...]) -> str:
        t = self.text(col).lower()
        if t not in allowed:
            raise self.err(f"{col} must be one of {', '.join(allowed)}, got {self.text(col)!r}")
        return t


def parse_row(rec: dict[str, str], line: int, path: str) -> tuple[str, Maternal, Markers]:
    r = _Row(rec, line, path)
    if not r.text("id"):
        raise r.err("id is empty")
    parous = r.boolean("parous")
    previous_pe = r.boolean("previous_pe") if parous else r.boolean("previous_pe", default=False)
    if previous_pe and not parous:
        raise r.err("previous_pe is yes but parous is no")
    ga = r.number("ga_weeks")
    for col, v in (("ga_weeks", ga), ("biophysical_ga_weeks", r.number("biophysical_ga_weeks", False)),
                   ("biochemical_ga_weeks", r.number("biochemical_ga_weeks", False))):
        if v is not None and not (GA_ACCEPT_DAYS[0] <= v * 7.0 <= GA_ACCEPT_DAYS[1]):
            raise r.err(f"{col} {v:g} is outside the first-trimester window 11+0 to 14+1 weeks of the FMF model")
    try:
        m = Maternal(age_years=r.number("age_years"), weight_kg=r.number("weight_kg"),
                     height_cm=r.number("height_cm"), ethnicity=r.choice("ethnicity", ETHNICITIES),
                     smoker=r.boolean("smoker"), conception=r.choice("conception", CONCEPTIONS),
                     chronic_hypertension=r.boolean("chronic_hypertension"), diabetes=r.choice("diabetes", DIABETES),
                     sle=r.boolean("sle"), aps=r.boolean("aps"), mother_had_pe=r.boolean("mother_had_pe"),
                     parous=parous, previous_pe=previous_pe,
                     previous_ga_weeks=r.number("previous_ga_weeks", required=parous) if parous else None,
                     interval_years=r.number("interval_years", required=parous and not previous_pe)
                     if parous and not previous_pe else None)
        plgf, plgf_mom = r.number("plgf", False), r.number("plgf_mom", False)
        assay = r.text("plgf_assay").lower() or None
        if assay is not None and assay not in PLGF_ASSAYS:
            raise r.err(f"plgf_assay must be one of {', '.join(PLGF_ASSAYS)}, got {r.text('plgf_assay')!r}")
        k = Markers(ga_weeks=ga, map_mmhg=r.number("map_mmhg", False), uta_pi=r.number("uta_pi", False),
                    plgf_pg_ml=plgf, plgf_assay=assay, plgf_mom=plgf_mom,
                    biophysical_ga_weeks=r.number("biophysical_ga_weeks", False),
                    biochemical_ga_weeks=r.number("biochemical_ga_weeks", False))
    except ValueError as exc:
        raise r.err(str(exc)) from None
    return r.text("id"), m, k


def read_input(path: str | Path, display: str | None = None) -> list[tuple[str, Maternal, Markers]]:
    display = display or str(path)
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", path=display)
    try:
        df = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:
        raise InputError(f"cannot read as tab-separated text ({type(exc).__name__})", path=display) from None
    cols = [c.strip() for c in df.columns]
    missing = [c for c in INPUT_COLUMNS if c not in cols]
    extra = [c for c in cols if c not in INPUT_COLUMNS]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            parts.append(f"unknown column(s) {', '.join(extra)}")
        raise InputError("; ".join(parts) + f" (expected exactly: {', '.join(INPUT_COLUMNS)})", path=display)
    df.columns = cols
    out, seen = [], set()
    for i, rec in enumerate(df.to_dict("records")):
        row = parse_row(rec, i + 2, display)
        if row[0] in seen:
            raise InputError(f"line {i + 2}: duplicate id", patient=row[0], path=display)
        seen.add(row[0])
        out.append(row)
    return out


def risk_table(rows: list[tuple[str, Maternal, Markers]], *, cutoff: float = DEFAULT_CUTOFF,
               sle_aps: str = "both") -> list[dict[str, Any]]:
    out = []
    for pid, m, k in rows:
        s = screen(m, k, cutoff=cutoff, sle_aps=sle_aps)
        out.append({"id": pid, "mom_map": s.moms["map"], "mom_uta_pi": s.moms["uta_pi"], "mom_plgf": s.moms["plgf"],
                    "prior_risk_37": s.prior_risk["37"], "risk_37": s.risk["37"], "risk_34": s.risk["34"],
                    "risk_32": s.risk["32"], "screen_positive": "yes" if s.screen_positive else "no"})
    return out


def table_text(table: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    buf.write("\t".join(OUTPUT_COLUMNS) + "\n")
    for r in table:
        buf.write("\t".join(r[c] if isinstance(r[c], str) else _fmt(r[c]) for c in OUTPUT_COLUMNS) + "\n")
    return buf.getvalue()


def run(input_tsv: str | Path, out_tsv: str | Path | None = None, *, cutoff: float = DEFAULT_CUTOFF,
        sle_aps: str = "both") -> str:
    """Read, screen, and write (atomically) or return the output table as text."""
    text = table_text(risk_table(read_input(input_tsv), cutoff=cutoff, sle_aps=sle_aps))
    if out_tsv is not None:
        from twinflow.io.atomic import write_text
        write_text(out_tsv, text)
    return text
