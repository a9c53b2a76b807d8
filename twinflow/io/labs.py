"""Laboratory results and vital signs: read, check and convert to canonical units.

Two input layouts are accepted, detected from the header row:

``long``
    A CSV with (at least) the columns ``date``, ``code`` (a LOINC code), ``value`` and
    ``unit`` (names are matched case-insensitively; extra columns are ignored).  One file
    holds one patient.  ``subject`` is ignored for this layout.
``synthea``
    The Synthea ``observations.csv`` export: ``DATE, PATIENT, ENCOUNTER, CODE,
    DESCRIPTION, VALUE, UNITS, TYPE`` (newer Synthea versions add ``CATEGORY``, which is
    accepted and ignored).  One file holds many patients; when more than one ``PATIENT``
    value is present the caller must pass ``subject`` (the ``PATIENT`` value of this
    patient).  Rows whose ``TYPE`` is not ``numeric`` (smoking status, coded answers ...)
    are skipped and counted in the QC report.

Every row of the selected patient must have an ISO 8601 date, a finite numeric value and,
for a modelled analyte, a unit that parses (see :func:`parse_unit`) and is dimensionally
compatible with the analyte's canonical unit.  Any problem raises
:class:`twinflow.errors.InputError` naming the patient, the file and the line.

Units are converted with `pint` (dimensional analysis), never with hand-typed factors:
UCUM spellings are translated into pint units by a small parser, and mass <-> amount of
substance conversions divide/multiply by the analyte's molar mass as a pint quantity.

Output table (:data:`OUTPUT_COLUMNS`), one row per observation, sorted by
``(date, analyte, loinc, source_row)``:

==================  =====================================================================
``date``            ISO 8601 text: ``YYYY-MM-DD`` for a date, ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)
                    for a time stamp with a zone; a time stamp without zone is kept as
                    written (``YYYY-MM-DDTHH:MM:SS``, zone unknown)
``loinc``           the LOINC code as given
``analyte``         key in :data:`ANALYTES` ('' for an unmodelled code)
``value``           value in ``unit`` (float)
``unit``            canonical unit of the analyte (the original unit for unmodelled codes)
``original_value``  value as read (float)
``original_unit``   unit as read
``plausible``       True only when the analyte is modelled and ``value`` lies in the
                    analyte's physiologically plausible range (inclusive); False for
                    implausible and for unmodelled rows (nothing is vouched for)
``flag``            '' | 'implausible_low' | 'implausible_high' | 'unmodelled'
``source_row``      line number in the input file (the header is line 1)
``analyser``        the immunoassay platform (lower case) from the optional long-layout column
                    ``analyser``; required, and one of delfia, kryptor, cobas, for PlGF,
                    sFlt-1, their ratio and PAPP-A (their values depend on the assay)
``body_site``       the optional long-layout column ``body_site`` as written (e.g. ``left arm``
                    for a blood-pressure reading); '' when absent
==================  =====================================================================

Unmodelled LOINC codes (not in :data:`ANALYTES`) are kept, flagged ``unmodelled``, with
value and unit passed through unconverted and their unit not checked: a lab the twin does
not use must not stop the pipeline, and keeping it makes the table a faithful record.

No ``PATIENT`` or ``ENCOUNTER`` identifier is ever copied to the outputs or to messages.
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import io
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pint

from twinflow.errors import InputError
from twinflow.io.atomic import write_json, write_tsv

__all__ = [
    "ANALYTES",
    "LOINC_TO_ANALYTE",
    "OUTPUT_COLUMNS",
    "Analyte",
    "convert_value",
    "conversion_factor",
    "ingest_labs",
    "parse_unit",
    "read_labs",
]


# --------------------------------------------------------------------------------------
# Analyte table
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Analyte:
    """One modelled analyte.

    ``unit`` is the canonical unit (SI, or the universal clinical convention: mmHg, /min,
    U/L, 10^9/L); ``molar_mass_g_per_mol`` enables mass <-> substance conversions (None:
    not needed or not meaningful); ``plausible_low``/``plausible_high`` bound the values a
    living patient can have (inclusive, in ``unit``) -- values outside are flagged, not
    dropped.  ``dimensionless_units`` lists the only spellings accepted for a
    dimensionless analyte (pint cannot tell a ratio from a percentage of something else).
    """

    key: str
    codes: tuple[str, ...]
    unit: str
    plausible_low: float
    plausible_high: float
    description: str
    molar_mass_g_per_mol: float | None = None
    dimensionless_units: tuple[str, ...] = ()
    analysers: tuple[str, ...] = ()     # when set, every row must name one of these analysers


#: Immunoassay platforms with FMF medians: PerkinElmer DELFIA Xpress, Thermo Fisher BRAHMS
#: KRYPTOR, Roche Cobas/Elecsys.
PREGNANCY_ANALYSERS = ("delfia", "kryptor", "cobas")

#: Modelled analytes, keyed by analyte key.  Codes are LOINC; several codes that measure
#: the same quantity (e.g. serum and blood creatinine, mass and substance concentration)
#: map to one key.  Molar masses: creatinine C4H7N3O 113.12 g/mol; bilirubin C33H36N4O6
#: 584.66 g/mol; glucose C6H12O6 180.16 g/mol; calcium 40.078 g/mol; haemoglobin as the
#: monomer Hb(Fe) 16114.5 g/mol (the mmol/L convention used in the Netherlands);
#: urea nitrogen as N2 28.014 g/mol (BUN mg/dL -> urea mmol/L, one urea has two N).
ANALYTES: dict[str, Analyte] = {
    a.key: a
    for a in (
        Analyte("creatinine", ("2160-0", "38483-4", "14682-9"), "umol/L", 5.0, 3000.0,
                "Creatinine in serum, plasma or blood", molar_mass_g_per_mol=113.12),
        Analyte("bilirubin_total", ("1975-2", "14631-6"), "umol/L", 0.0, 1000.0,
                "Bilirubin total in serum or plasma", molar_mass_g_per_mol=584.66),
        Analyte("albumin", ("1751-7", "61151-7"), "g/L", 5.0, 70.0,
                "Albumin in serum or plasma"),
        Analyte("alt", ("1742-6",), "U/L", 0.0, 20000.0,
                "Alanine aminotransferase in serum or plasma"),
        Analyte("ast", ("1920-8",), "U/L", 0.0, 40000.0,
                "Aspartate aminotransferase in serum or plasma"),
        Analyte("neutrophils", ("751-8", "753-4", "26499-4"), "10^9/L", 0.0, 100.0,
                "Neutrophils (absolute count) in blood"),
        Analyte("leukocytes", ("6690-2", "26464-8"), "10^9/L", 0.0, 1000.0,
                "Leukocytes in blood"),
        Analyte("platelets", ("777-3", "26515-7"), "10^9/L", 0.0, 5000.0,
                "Platelets in blood"),
        Analyte("haemoglobin", ("718-7",), "g/L", 10.0, 260.0,
                "Haemoglobin in blood", molar_mass_g_per_mol=16114.5),
        Analyte("inr", ("6301-6", "34714-6"), "1", 0.5, 20.0,
                "INR of prothrombin time", dimensionless_units=("1",)),
        Analyte("glucose", ("2345-7", "2339-0", "14749-6"), "mmol/L", 0.5, 150.0,
                "Glucose in serum, plasma or blood", molar_mass_g_per_mol=180.16),
        Analyte("urea_nitrogen", ("3094-0", "6299-2"), "mmol/L", 0.1, 150.0,
                "Urea nitrogen (BUN) as urea in serum, plasma or blood",
                molar_mass_g_per_mol=28.014),
        Analyte("calcium", ("17861-6", "49765-1"), "mmol/L", 0.5, 5.0,
                "Calcium in serum, plasma or blood", molar_mass_g_per_mol=40.078),
        Analyte("egfr", ("33914-3", "62238-1", "98979-8"), "mL/min/1.73m2", 0.0, 250.0,
                "Estimated glomerular filtration rate per 1.73 m2 body surface area"),
        Analyte("systolic_bp", ("8480-6",), "mmHg", 40.0, 300.0,
                "Systolic blood pressure"),
        Analyte("diastolic_bp", ("8462-4",), "mmHg", 10.0, 200.0,
                "Diastolic blood pressure"),
        Analyte("heart_rate", ("8867-4",), "/min", 20.0, 300.0, "Heart rate"),
        Analyte("respiratory_rate", ("9279-1",), "/min", 2.0, 100.0, "Respiratory rate"),
        Analyte("oxygen_saturation", ("2708-6", "59408-5"), "%", 30.0, 100.0,
                "Oxygen saturation (arterial or pulse oximetry)",
                dimensionless_units=("%",)),
        Analyte("body_height", ("8302-2",), "cm", 20.0, 275.0, "Body height"),
        Analyte("body_weight", ("29463-7",), "kg", 0.3, 650.0, "Body weight"),
        Analyte("bmi", ("39156-5",), "kg/m2", 5.0, 200.0, "Body mass index"),
        Analyte("mean_bp", ("8478-0",), "mmHg", 20.0, 250.0, "Mean blood pressure"),
        # pregnancy biomarkers (LOINC 74755-0, 74756-8, 74757-6: the PlGF, sFlt-1 and ratio
        # terms of the sFlt-1/PlGF test; PAPP-A 48407-1 mass, 32046-5 units): assay-dependent,
        # so the analyser must be named (FMF medians exist for these three platforms)
        Analyte("plgf", ("74755-0",), "pg/mL", 0.5, 10000.0, "Placental growth factor in serum",
                analysers=PREGNANCY_ANALYSERS),
        Analyte("sflt1", ("74756-8",), "pg/mL", 1.0, 200000.0, "Soluble fms-like tyrosine kinase-1 in serum",
                analysers=PREGNANCY_ANALYSERS),
        Analyte("sflt1_plgf_ratio", ("74757-6",), "1", 0.0, 10000.0, "sFlt-1/PlGF ratio in serum",
                dimensionless_units=("1",), analysers=PREGNANCY_ANALYSERS),
        Analyte("papp_a_mass", ("48407-1",), "mg/L", 0.001, 200.0,
                "Pregnancy associated plasma protein A (mass) in serum or plasma", analysers=PREGNANCY_ANALYSERS),
        Analyte("papp_a", ("32046-5",), "[IU]/L", 0.001, 200.0,
                "Pregnancy associated plasma protein A (units) in serum or plasma", analysers=PREGNANCY_ANALYSERS),
    )
}

#: LOINC code -> analyte key.
LOINC_TO_ANALYTE: dict[str, str] = {code: a.key for a in ANALYTES.values() for code in a.codes}
assert len(LOINC_TO_ANALYTE) == sum(len(a.codes) for a in ANALYTES.values()), "duplicate LOINC"

OUTPUT_COLUMNS: tuple[str, ...] = (
    "date", "loinc", "analyte", "value", "unit", "original_value", "original_unit",
    "plausible", "flag", "source_row", "analyser", "body_site",
)
#: optional columns of the long layout (empty when absent)
LONG_OPTIONAL = ("analyser", "body_site")

LONG_COLUMNS = ("date", "code", "value", "unit")
SYNTHEA_COLUMNS = ("DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "VALUE", "UNITS", "TYPE")


# --------------------------------------------------------------------------------------
# UCUM -> pint
# --------------------------------------------------------------------------------------


class UnitParseError(ValueError):
    """A unit string that :func:`parse_unit` does not understand."""


@functools.lru_cache(maxsize=1)
def _registry() -> pint.UnitRegistry:
    """A private pint registry (not the application registry) with two extra units."""
    ureg = pint.UnitRegistry()
    # UCUM [IU]: for enzymes (ALT, AST) the international unit is the enzyme unit,
    # 1 umol/min.  For analytes whose canonical unit is not an enzyme activity the
    # dimensions differ and the conversion is refused.
    ureg.define("iu_enzyme = enzyme_unit")
    # UCUM annotation {1.73_m2} in eGFR units: "per 1.73 m2 of body surface area".
    ureg.define("bsa_1_73_m2 = 1.73 * meter ** 2")
    return ureg


# UCUM atoms -> (pint unit name, accepts metric prefixes)
_ATOMS: dict[str, tuple[str, bool]] = {
    "g": ("gram", True),
    "L": ("liter", True),
    "l": ("liter", True),
    "mol": ("mole", True),
    "m": ("meter", True),
    "s": ("second", True),
    "min": ("minute", False),
    "h": ("hour", False),
    "d": ("day", False),
    "U": ("enzyme_unit", True),
    "kat": ("katal", True),
    "Pa": ("pascal", True),
    "[IU]": ("iu_enzyme", True),
    "[iU]": ("iu_enzyme", True),
    "m[Hg]": ("meter_Hg", True),
    "cm[H2O]": ("centimeter_H2O", False),
    "%": ("percent", False),
    "[in_i]": ("inch", False),
    "[ft_i]": ("foot", False),
    "[lb_av]": ("pound", False),
    "[oz_av]": ("ounce", False),
}
_PREFIXES: dict[str, str] = {
    "k": "kilo", "h": "hecto", "da": "deca", "d": "deci", "c": "centi", "m": "milli",
    "u": "micro", "n": "nano", "p": "pico", "f": "femto",
}
# Annotations that carry meaning; every other {annotation} means 1 (as in UCUM).
_ANNOTATIONS: dict[str, str] = {"{1.73_m2}": "bsa_1_73_m2"}

# Common non-UCUM spellings found in real exports -> UCUM.  Exact matches only.
_ALIASES: dict[str, str] = {
    "mmHg": "mm[Hg]",
    "mm Hg": "mm[Hg]",
    "bpm": "/min",
    "beats/min": "/min",
    "breaths/min": "/min",
    "IU/L": "[IU]/L",
    "K/uL": "10*3/uL",
    "x10^9/L": "10*9/L",
    "x10^3/uL": "10*3/uL",
    "x10E9/L": "10*9/L",
    "x10E3/uL": "10*3/uL",
    "cells/uL": "/uL",
    "in": "[in_i]",
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "mL/min/1.73m2": "mL/min/{1.73_m2}",
    "mL/min/1.73 m2": "mL/min/{1.73_m2}",
    "mL/min/1.73m^2": "mL/min/{1.73_m2}",
    "mL/min/1.73 m^2": "mL/min/{1.73_m2}",
    "ml/min/1.73m2": "mL/min/{1.73_m2}",
    "kg/m^2": "kg/m2",
}

_FACTOR_RE = re.compile(r"^10(?:\*|\^)([+-]?\d+)$")
_ATOM_EXP_RE = re.compile(r"^(.*?[^\d+^-])\^?([+-]?\d+)?$")


def _split_ucum(text: str) -> list[tuple[int, str]]:
    """Split a UCUM term into (sign, component) at top-level '.' and '/'."""
    parts: list[tuple[int, str]] = []
    depth_sq = depth_br = 0
    sign, start = 1, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth_sq += 1
        elif ch == "]":
            depth_sq -= 1
        elif ch == "{":
            depth_br += 1
        elif ch == "}":
            depth_br -= 1
        elif ch in "./" and depth_sq == 0 and depth_br == 0:
            parts.append((sign, text[start:i]))
            sign, start = (-1 if ch == "/" else 1), i + 1
    if depth_sq or depth_br:
        raise UnitParseError("unbalanced brackets")
    parts.append((sign, text[start:]))
    if parts[0][1] == "" and len(parts) > 1 and parts[1][0] == -1:
        parts = parts[1:]  # leading '/' as in '/min'
    return parts


def _component(comp: str) -> Any:
    """One UCUM component (factor, annotation or atom with exponent) -> pint quantity."""
    ureg = _registry()
    if comp == "":
        raise UnitParseError("empty component")
    if comp in _ANNOTATIONS:
        return ureg.Quantity(1.0, _ANNOTATIONS[comp])
    # strip a trailing annotation: '{beats}', '10*3{cells}', 'mL{total}'
    if comp.endswith("}"):
        cut = comp.rfind("{")
        comp = comp[:cut]
        if comp == "":
            return ureg.Quantity(1.0, "dimensionless")
    if "{" in comp or "}" in comp:
        raise UnitParseError("misplaced annotation")
    m = _FACTOR_RE.match(comp)
    if m:
        return ureg.Quantity(10.0 ** int(m.group(1)), "dimensionless")
    if comp.isdigit():
        return ureg.Quantity(float(comp), "dimensionless")
    if comp in _ATOMS:
        return ureg.Quantity(1.0, _ATOMS[comp][0])
    m = _ATOM_EXP_RE.match(comp)
    if not m:
        raise UnitParseError(f"cannot read {comp!r}")
    atom, exp = m.group(1), int(m.group(2) or 1)
    name = None
    if atom in _ATOMS:
        name = _ATOMS[atom][0]
    else:
        for p in sorted(_PREFIXES, key=len, reverse=True):
            rest = atom[len(p):]
            if atom.startswith(p) and rest in _ATOMS and _ATOMS[rest][1]:
                name = _PREFIXES[p] + _ATOMS[rest][0]
                break
    if name is None:
        raise UnitParseError(f"unknown unit symbol {atom!r}")
    return ureg.Quantity(1.0, name) ** exp


@functools.lru_cache(maxsize=512)
def parse_unit(text: str) -> Any:
    """Translate a UCUM unit string (or a common export spelling) into a pint quantity.

    The quantity's magnitude carries any numeric factor (``10*3/uL`` -> 1000 / microliter).
    Accepted: UCUM atoms g, L/l, mol, m, s, min, h, d, U, kat, Pa, [IU], mm[Hg], cm[H2O],
    %, [in_i], [ft_i], [lb_av], [oz_av] with metric prefixes k h da d c m u n p f where
    UCUM allows them, exponents (``m2``), factors ``10*N``/``10^N`` and integers, the
    operators ``.`` and ``/`` (left to right, as in UCUM), annotations ``{...}`` (meaning 1,
    except ``{1.73_m2}``), the empty numerator ``/min``, ``1`` for dimensionless, and the
    spellings in ``_ALIASES`` (``mmHg``, ``IU/L``, ``K/uL``, ``mL/min/1.73m2`` ...).
    Anything else raises :class:`UnitParseError` -- units are never guessed.
    """
    s = text.strip().replace("\u00b5", "u").replace("\u03bc", "u")
    s = _ALIASES.get(s, s)
    if s == "":
        raise UnitParseError("missing unit")
    if s == "1":
        return _registry().Quantity(1.0, "dimensionless")
    if any(ch.isspace() for ch in s) or "(" in s or ")" in s:
        raise UnitParseError(f"cannot read {text!r}")
    q = _registry().Quantity(1.0, "dimensionless")
    for sign, comp in _split_ucum(s):
        c = _component(comp)
        q = q * c if sign > 0 else q / c
    return q


def _normalised_dimensionless(text: str) -> str:
    """Spelling used to check ``Analyte.dimensionless_units``: annotations alone mean '1'."""
    s = text.strip()
    if re.fullmatch(r"\{[^{}]*\}", s):
        return "1"
    return s


class UnitMismatchError(ValueError):
    """A unit that parses but cannot be converted to the analyte's canonical unit."""


def conversion_factor(from_unit: str, to_unit: str, analyte: str | None = None) -> float:
    """Factor f such that ``value_in_from_unit * f`` is the value in ``to_unit``.

    Uses pint dimensional analysis; when the dimensions differ by amount of substance and
    ``analyte`` has a molar mass, converts via that molar mass.  Raises
    :class:`UnitParseError` for an unreadable unit and :class:`UnitMismatchError` when
    the dimensions cannot be reconciled.
    """
    a = ANALYTES[analyte] if analyte is not None else None
    return _factor(from_unit.strip(), to_unit.strip(), a.key if a else None)


@functools.lru_cache(maxsize=1024)
def _factor(from_unit: str, to_unit: str, analyte: str | None) -> float:
    q_from = parse_unit(from_unit)
    q_to = parse_unit(to_unit)
    a = ANALYTES[analyte] if analyte is not None else None
    if a is not None and a.dimensionless_units:
        ok = set(a.dimensionless_units)
        if _normalised_dimensionless(from_unit) not in ok or _normalised_dimensionless(to_unit) not in ok:
            raise UnitMismatchError("dimensionless analyte: only " + ", ".join(map(repr, sorted(ok))))
    candidates = [q_from / q_to]
    if a is not None and a.molar_mass_g_per_mol is not None:
        mm = _registry().Quantity(a.molar_mass_g_per_mol, "gram / mole")
        candidates += [q_from / mm / q_to, q_from * mm / q_to]
    for ratio in candidates:
        if ratio.dimensionless:
            return float(ratio.to("dimensionless").magnitude)
    raise UnitMismatchError("incompatible dimensions")


def convert_value(value: float, from_unit: str, to_unit: str, analyte: str | None = None) -> float:
    """Convert one value (see :func:`conversion_factor`)."""
    return float(value) * conversion_factor(from_unit, to_unit, analyte)


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def _parse_date(text: str) -> str:
    """ISO 8601 date or time stamp -> canonical ISO text (UTC when a zone is given)."""
    s = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        return _dt.date.fromisoformat(s).isoformat()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", s):
        raise ValueError(s)
    t = _dt.datetime.fromisoformat(s)
    if t.tzinfo is None:
        return t.isoformat()
    return t.astimezone(_dt.timezone.utc).replace(tzinfo=None).isoformat() + "Z"


def _short(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame({
        "date": pd.Series([], dtype=object),
        "loinc": pd.Series([], dtype=object),
        "analyte": pd.Series([], dtype=object),
        "value": pd.Series([], dtype="float64"),
        "unit": pd.Series([], dtype=object),
        "original_value": pd.Series([], dtype="float64"),
        "original_unit": pd.Series([], dtype=object),
        "plausible": pd.Series([], dtype=bool),
        "flag": pd.Series([], dtype=object),
        "source_row": pd.Series([], dtype="int64"),
        "analyser": pd.Series([], dtype=object),
        "body_site": pd.Series([], dtype=object),
    })


def _read_rows(
    path: Path, err, subject: str | None
) -> tuple[str, list[tuple[int, dict[str, str]]], set[str]]:
    """Detect the layout; return it, the data rows as (line number, {column: text}) and,
    for Synthea, the set of PATIENT values.  Synthea rows of other subjects than
    ``subject`` (when given) are dropped while reading, unparsed."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise err("not UTF-8 text") from None
    except OSError as e:
        raise err(f"cannot read file ({e.strerror or type(e).__name__})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        while header is not None and not any(h.strip() for h in header):
            header = next(reader, None)
        if header is None:
            raise err("empty file (no header row)")
        names = [h.strip() for h in header]
        lower = {n.lower(): i for i, n in enumerate(names)}
        upper = {n.upper(): i for i, n in enumerate(names)}
        if all(c.upper() in upper for c in SYNTHEA_COLUMNS):
            layout = "synthea"
            idx = {c: upper[c] for c in SYNTHEA_COLUMNS}
        elif all(c in lower for c in LONG_COLUMNS):
            layout = "long"
            idx = {c: lower[c] for c in LONG_COLUMNS}
            idx.update({c: lower[c] for c in LONG_OPTIONAL if c in lower})
        else:
            found = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise err(
                "unknown layout: need the columns date, code, value, unit (long CSV with "
                "LOINC codes) or DATE, PATIENT, ENCOUNTER, CODE, DESCRIPTION, VALUE, UNITS, "
                f"TYPE (Synthea observations.csv); found: {found}"
            )
        rows: list[tuple[int, dict[str, str]]] = []
        subjects: set[str] = set()
        pi = idx["PATIENT"] if layout == "synthea" else -1
        want = None if subject is None else str(subject).strip()
        prev_line = reader.line_num
        for rec in reader:
            line = prev_line + 1
            prev_line = reader.line_num
            if not any(f.strip() for f in rec):
                continue
            if len(rec) != len(names):
                raise err(f"line {line}: {len(rec)} fields, the header has {len(names)} "
                          "(unquoted comma?)")
            if pi >= 0:
                who = rec[pi].strip()
                subjects.add(who)
                if want is not None and who != want:
                    continue
            rows.append((line, {c: rec[i] for c, i in idx.items()}))
    except csv.Error as e:
        raise err(f"line {reader.line_num}: malformed CSV ({e})") from None
    return layout, rows, subjects


def _select_subject(
    rows: list, subjects: set[str], subject: str | None, err
) -> tuple[list, dict[str, Any]]:
    """Check the subject choice; keep the numeric rows (``rows`` are already filtered)."""
    n_subjects = len(subjects)
    if subject is None and n_subjects > 1:
        raise err(f"the Synthea file holds {n_subjects} subjects: give the subject "
                  "(the PATIENT value) of this patient")
    if subject is not None and str(subject).strip() not in subjects:
        raise err(f"the given subject is not in this file ({n_subjects} subject"
                  f"{'' if n_subjects == 1 else 's'} present)")
    numeric = [(ln, r) for ln, r in rows if r["TYPE"].strip().lower() == "numeric"]
    stats = {"n_subjects_in_file": n_subjects, "n_skipped_non_numeric": len(rows) - len(numeric)}
    return numeric, stats


def _read(path, patient, subject, display_path) -> tuple[pd.DataFrame, dict[str, Any]]:
    shown = display_path if display_path is not None else path

    def err(problem: str) -> InputError:
        return InputError(problem, patient=patient, path=shown)

    p = Path(path)
    if not p.exists():
        raise err("file not found")
    if not p.is_file():
        raise err("not a file")
    layout, rows, subjects = _read_rows(p, err, subject)
    stats: dict[str, Any]
    if layout == "synthea":
        rows, stats = _select_subject(rows, subjects, subject, err)
        cols = {"date": "DATE", "code": "CODE", "value": "VALUE", "unit": "UNITS"}
    else:
        stats = {"n_skipped_non_numeric": 0}
        cols = {"date": "date", "code": "code", "value": "value", "unit": "unit"}

    out: dict[str, list] = {c: [] for c in OUTPUT_COLUMNS}
    for line, r in rows:
        raw_date = r[cols["date"]]
        try:
            date = _parse_date(raw_date)
        except ValueError:
            raise err(f"line {line}: malformed date {_short(raw_date)} (expected ISO 8601, "
                      "e.g. 2021-03-04 or 2021-03-04T10:20:00Z)") from None
        code = r[cols["code"]].strip()
        if not code:
            raise err(f"line {line}: missing LOINC code")
        raw_value = r[cols["value"]].strip()
        try:
            value = float(raw_value)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            what = "missing value" if raw_value == "" else f"non-numeric value {_short(raw_value)}"
            raise err(f"line {line}: {what} for LOINC {code}")
        unit = r[cols["unit"]].strip()
        key = LOINC_TO_ANALYTE.get(code, "")
        if key:
            a = ANALYTES[key]
            try:
                f = _factor(unit, a.unit, key)
            except UnitParseError as e:
                what = "missing unit" if unit == "" else f"unknown unit {unit!r}"
                raise err(f"line {line}: {what} for {key} (LOINC {code}): {e}; write it in "
                          f"UCUM, e.g. {a.unit!r}") from None
            except UnitMismatchError as e:
                raise err(f"line {line}: unit {unit!r} is not compatible with {key} (LOINC "
                          f"{code}, canonical unit {a.unit!r}): {e}") from None
            conv = value * f
            if conv < a.plausible_low:
                flag = "implausible_low"
            elif conv > a.plausible_high:
                flag = "implausible_high"
            else:
                flag = ""
            out["value"].append(conv)
            out["unit"].append(a.unit)
            out["plausible"].append(flag == "")
            out["flag"].append(flag)
        else:
            out["value"].append(value)
            out["unit"].append(unit)
            out["plausible"].append(False)
            out["flag"].append("unmodelled")
        analyser = r.get("analyser", "").strip().lower()
        if key and ANALYTES[key].analysers:
            known = ANALYTES[key].analysers
            if not analyser:
                raise err(f"line {line}: {key} (LOINC {code}) needs the analyser that measured it (column "
                          f"analyser: one of {', '.join(known)})")
            if analyser not in known:
                raise err(f"line {line}: unknown analyser {r.get('analyser', '').strip()!r} for {key} "
                          f"(LOINC {code}); known: {', '.join(known)}")
        out["analyser"].append(analyser)
        out["body_site"].append(r.get("body_site", "").strip())
        out["date"].append(date)
        out["loinc"].append(code)
        out["analyte"].append(key)
        out["original_value"].append(value)
        out["original_unit"].append(unit)
        out["source_row"].append(line)

    if not out["date"]:
        df = _empty_table()
    else:
        df = pd.DataFrame(out, columns=list(OUTPUT_COLUMNS))
        for c in ("date", "loinc", "analyte", "unit", "original_unit", "flag", "analyser", "body_site"):
            df[c] = df[c].astype(object)
        df["value"] = df["value"].astype("float64")
        df["original_value"] = df["original_value"].astype("float64")
        df["plausible"] = df["plausible"].astype(bool)
        df["source_row"] = df["source_row"].astype("int64")
        df = df.sort_values(["date", "analyte", "loinc", "source_row"], kind="mergesort")
        df = df.reset_index(drop=True)
    stats["layout"] = layout
    return df, stats


def read_labs(
    path: str | Path,
    *,
    patient: str | None = None,
    subject: str | None = None,
    display_path: str | Path | None = None,
) -> pd.DataFrame:
    """Read a labs file (long CSV or Synthea observations.csv) into the canonical table.

    ``patient`` (the sheet's patient id) and ``display_path`` (the path as the user wrote
    it) only label error messages; ``subject`` selects the ``PATIENT`` of a Synthea file.
    Returns a DataFrame with :data:`OUTPUT_COLUMNS` (see the module docstring).  Raises
    :class:`~twinflow.errors.InputError` for any problem.
    """
    df, _ = _read(path, patient, subject, display_path)
    return df


def _qc(df: pd.DataFrame, stats: dict[str, Any]) -> dict[str, Any]:
    modelled = df[df["analyte"] != ""]
    analytes: dict[str, Any] = {}
    for key, g in modelled.groupby("analyte", sort=True):
        analytes[str(key)] = {
            "n": int(len(g)),
            "unit": ANALYTES[str(key)].unit,
            "first_date": str(g["date"].min()),
            "last_date": str(g["date"].max()),
            "n_implausible": int((g["flag"] != "").sum()),
        }
    unmodelled = df[df["analyte"] == ""]
    qc: dict[str, Any] = {
        "layout": stats["layout"],
        "n_rows": int(len(df)),
        "n_converted": int(len(modelled)),
        "n_unit_changed": int((modelled["original_unit"] != modelled["unit"]).sum()),
        "n_implausible": int(df["flag"].isin(["implausible_low", "implausible_high"]).sum()),
        "n_unmodelled": int(len(unmodelled)),
        "n_skipped_non_numeric": int(stats.get("n_skipped_non_numeric", 0)),
        "analytes": analytes,
        "unmodelled_codes": {str(k): int(v) for k, v in sorted(Counter(unmodelled["loinc"]).items())},
    }
    if "n_subjects_in_file" in stats:
        qc["n_subjects_in_file"] = int(stats["n_subjects_in_file"])
    return qc


def ingest_labs(
    path: str | Path,
    out_tsv: str | Path,
    out_qc_json: str | Path,
    *,
    patient: str,
    subject: str | None = None,
    display_path: str | Path | None = None,
) -> dict[str, Any]:
    """Read ``path``, write the canonical table (TSV) and a QC report (JSON); return the QC.

    QC keys: ``layout``, ``n_rows``, ``n_converted`` (modelled rows brought to their
    canonical unit, including factor 1), ``n_unit_changed`` (of those, rows whose unit
    spelling changed), ``n_implausible``, ``n_unmodelled``, ``n_skipped_non_numeric``
    (Synthea text rows of this subject), ``analytes`` (per analyte: ``n``, ``unit``,
    ``first_date``, ``last_date``, ``n_implausible``), ``unmodelled_codes`` (LOINC -> count)
    and, for Synthea, ``n_subjects_in_file``.  No identifiers and no paths.  Nothing is
    written when the input is bad.
    """
    df, stats = _read(path, patient, subject, display_path)
    qc = _qc(df, stats)
    write_tsv(out_tsv, df)
    write_json(out_qc_json, qc)
    return qc
