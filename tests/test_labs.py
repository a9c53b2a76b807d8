"""Labs ingest: layouts, UCUM -> pint conversion, errors, QC and the demo writer.

Expected numbers are published conversion factors (e.g. creatinine 1 mg/dL = 88.4 umol/L,
bilirubin 1 mg/dL = 17.1 umol/L, glucose 1 mmol/L = 18 mg/dL), exact unit definitions
(1 in = 2.54 cm, 1 lb = 0.45359237 kg) or hand calculations shown beside each assertion.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from twinflow.demo.labs import CONVENTIONAL_UNITS, write_demo_labs
from twinflow.errors import InputError
from twinflow.io.labs import (
    ANALYTES,
    LOINC_TO_ANALYTE,
    OUTPUT_COLUMNS,
    UnitMismatchError,
    UnitParseError,
    conversion_factor,
    ingest_labs,
    parse_unit,
    read_labs,
)

# Two synthetic Synthea PATIENT uuids (format as in real exports).
P1 = "b9c610cd-28a6-4636-ccb6-c7a0d2a4cb85"
P2 = "1f7e3e12-5d2b-4a4e-9d0c-7a1c2b3d4e5f"
P3 = "0a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c5d"
E1 = "8f3a6c2e-1b4d-4e5f-a6b7-c8d9e0f1a2b3"


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _long(tmp_path: Path, rows: list[str], name: str = "labs.csv") -> Path:
    return _write(tmp_path / name, "date,code,value,unit\n" + "\n".join(rows) + "\n")


def _one(tmp_path: Path, code: str, value: str, unit: str) -> float:
    df = read_labs(_long(tmp_path, [f"2021-03-04,{code},{value},{unit}"]), patient="P001")
    assert len(df) == 1
    return float(df["value"].iloc[0])


# ---- published conversions -----------------------------------------------------------


@pytest.mark.parametrize(
    "code, value, unit, expected, tol, canonical",
    [
        # creatinine 1 mg/dL = 10 mg/L / 113.12 g/mol = 88.40 umol/L (factor 88.4)
        ("2160-0", "1.0", "mg/dL", 88.40, 0.005, "umol/L"),
        ("38483-4", "1.0", "mg/dL", 88.40, 0.005, "umol/L"),
        # bilirubin 1 mg/dL = 10 mg/L / 584.66 g/mol = 17.10 umol/L (factor 17.1)
        ("1975-2", "1.0", "mg/dL", 17.10, 0.005, "umol/L"),
        ("718-7", "14.0", "g/dL", 140.0, 1e-9, "g/L"),
        ("1751-7", "4.0", "g/dL", 40.0, 1e-9, "g/L"),
        ("777-3", "250", "10*3/uL", 250.0, 1e-9, "10^9/L"),
        ("26515-7", "250", "10^9/L", 250.0, 1e-9, "10^9/L"),
        ("751-8", "3.2", "10*3/uL", 3.2, 1e-9, "10^9/L"),
        ("751-8", "3200", "/uL", 3.2, 1e-9, "10^9/L"),
        ("8302-2", "70", "[in_i]", 177.8, 1e-9, "cm"),  # 70 x 2.54
        ("29463-7", "154", "[lb_av]", 69.853, 0.0005, "kg"),  # 154 x 0.45359237
        # glucose 90 mg/dL = 900 mg/L / 180.16 g/mol = 4.996 mmol/L (~5.0)
        ("2345-7", "90", "mg/dL", 4.9956, 0.0001, "mmol/L"),
        # BUN 14 mg/dL / 28.014 g/mol (N2) = 5.0 mmol/L urea (factor 0.357)
        ("3094-0", "14", "mg/dL", 4.9975, 0.0001, "mmol/L"),
        ("1742-6", "35", "[IU]/L", 35.0, 1e-9, "U/L"),
        ("1920-8", "0.5", "ukat/L", 30.0, 1e-9, "U/L"),  # 1 ukat/L = 60 U/L
        ("8480-6", "120", "mm[Hg]", 120.0, 1e-9, "mmHg"),
        ("8480-6", "16", "kPa", 120.01, 0.005, "mmHg"),  # 16 kPa / 0.133322 kPa/mmHg
        ("8867-4", "72", "{beats}/min", 72.0, 1e-9, "/min"),
        ("33914-3", "1.0", "mL/s/{1.73_m2}", 60.0, 1e-9, "mL/min/1.73m2"),
        ("62238-1", "85", "mL/min/{1.73_m2}", 85.0, 1e-9, "mL/min/1.73m2"),
        ("6301-6", "1.1", "{INR}", 1.1, 1e-9, "1"),
        # haemoglobin 8.7 mmol/L (Hb monomer, 16114.5 g/mol) = 140.2 g/L
        ("718-7", "8.7", "mmol/L", 140.196, 0.001, "g/L"),
    ],
)
def test_published_conversions(tmp_path, code, value, unit, expected, tol, canonical):
    df = read_labs(_long(tmp_path, [f"2021-03-04,{code},{value},{unit}"]), patient="P001")
    row = df.iloc[0]
    assert row["value"] == pytest.approx(expected, abs=tol)
    assert row["unit"] == canonical == ANALYTES[row["analyte"]].unit
    assert row["original_value"] == float(value)
    assert row["original_unit"] == unit
    assert row["flag"] == "" and bool(row["plausible"]) is True


def test_rounded_clinical_factors():
    assert round(conversion_factor("mg/dL", "umol/L", "creatinine"), 1) == 88.4
    assert round(conversion_factor("mg/dL", "umol/L", "bilirubin_total"), 1) == 17.1
    assert round(90 * conversion_factor("mg/dL", "mmol/L", "glucose"), 1) == 5.0
    assert round(154 * conversion_factor("[lb_av]", "kg"), 2) == 69.85
    # counts per volume: 10*3/uL is exactly 10^9/L
    assert conversion_factor("10*3/uL", "10*9/L") == pytest.approx(1.0, rel=1e-15)


def test_every_canonical_unit_parses_and_codes_are_unique():
    for a in ANALYTES.values():
        assert conversion_factor(a.unit, a.unit, a.key) == pytest.approx(1.0)
        assert a.plausible_low < a.plausible_high
        for code in a.codes:
            assert LOINC_TO_ANALYTE[code] == a.key


@pytest.mark.parametrize("unit", ["mg/dLx", "MG/DL", "Cel", "mg per dL", "{x", "mg//dL", "cells"])
def test_parse_unit_rejects(unit):
    with pytest.raises(UnitParseError):
        parse_unit(unit)


def test_dimensionless_analyte_refuses_percent():
    # pint alone would turn 110 % into INR 1.1: that is a guess, so it is refused
    with pytest.raises(UnitMismatchError):
        conversion_factor("%", "1", "inr")


# ---- error messages -----------------------------------------------------------------


def test_unknown_unit_names_patient_file_line_unit(tmp_path):
    path = _long(tmp_path, ["2021-03-04,2160-0,1.0,mg/dL", "2021-03-05,2160-0,1.1,mg/dLx"])
    with pytest.raises(InputError) as ei:
        read_labs(path, patient="P007", display_path="labs/P007.csv")
    msg = str(ei.value)
    assert msg.startswith("patient P007: labs/P007.csv: line 3: unknown unit 'mg/dLx'")
    assert "creatinine" in msg and "2160-0" in msg
    assert ei.value.patient == "P007" and ei.value.path == "labs/P007.csv"


def test_missing_unit_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"line 2: missing unit for creatinine"):
        read_labs(_long(tmp_path, ["2021-03-04,2160-0,1.0,"]), patient="P1")


def test_incompatible_unit(tmp_path):
    with pytest.raises(InputError, match=r"line 2: unit 'mg/dL' is not compatible with heart_rate"):
        read_labs(_long(tmp_path, ["2021-03-04,8867-4,70,mg/dL"]), patient="P1")
    # absolute neutrophil count given as a percentage
    with pytest.raises(InputError, match=r"not compatible with neutrophils"):
        read_labs(_long(tmp_path, ["2021-03-04,751-8,55,%"]), patient="P1")
    # albumin has no molar mass in the table: mmol/L is refused, not guessed
    with pytest.raises(InputError, match=r"not compatible with albumin"):
        read_labs(_long(tmp_path, ["2021-03-04,1751-7,0.6,mmol/L"]), patient="P1")


@pytest.mark.parametrize("date", ["04/03/2021", "2021-13-01", "2021-02-30", "yesterday", ""])
def test_malformed_date(tmp_path, date):
    path = _long(tmp_path, ["2021-03-04,2160-0,1.0,mg/dL", f"{date},2160-0,1.0,mg/dL"])
    with pytest.raises(InputError, match=r"^patient P1: .*labs.csv: line 3: malformed date"):
        read_labs(path, patient="P1")


@pytest.mark.parametrize("value", ["abc", "<5", "nan", "inf", ""])
def test_non_numeric_value(tmp_path, value):
    with pytest.raises(InputError, match=r"line 2: (non-numeric|missing) value"):
        read_labs(_long(tmp_path, [f"2021-03-04,2160-0,{value},mg/dL"]), patient="P1")


def test_missing_file_and_unknown_layout(tmp_path):
    with pytest.raises(InputError, match=r"^patient P1: labs/x.csv: file not found$"):
        read_labs(tmp_path / "nope.csv", patient="P1", display_path="labs/x.csv")
    path = _write(tmp_path / "bad.csv", "when,loinc,result\n2021-03-04,2160-0,1.0\n")
    with pytest.raises(InputError) as ei:
        read_labs(path, patient="P1")
    msg = str(ei.value)
    assert "unknown layout" in msg and "date, code, value, unit" in msg and "UNITS" in msg
    with pytest.raises(InputError, match="empty file"):
        read_labs(_write(tmp_path / "empty.csv", ""), patient="P1")


def test_ragged_row(tmp_path):
    path = _long(tmp_path, ["2021-03-04,2160-0,1,0,mg/dL"])
    with pytest.raises(InputError, match=r"line 2: 5 fields, the header has 4"):
        read_labs(path, patient="P1")


# ---- flags, unmodelled, dates, sorting ----------------------------------------------


def test_implausible_and_unmodelled(tmp_path):
    path = _long(tmp_path, [
        "2021-03-04,8867-4,400,/min",
        "2021-03-04,8867-4,5,/min",
        "2021-03-04,8867-4,72,/min",
        "2021-03-04,72514-3,4,{score}",  # pain severity: not modelled
    ])
    df = read_labs(path, patient="P1")
    hr = df[df["analyte"] == "heart_rate"].set_index("original_value")
    assert hr.loc[400.0, "flag"] == "implausible_high" and not hr.loc[400.0, "plausible"]
    assert hr.loc[5.0, "flag"] == "implausible_low" and not hr.loc[5.0, "plausible"]
    assert hr.loc[72.0, "flag"] == "" and hr.loc[72.0, "plausible"]
    un = df[df["loinc"] == "72514-3"].iloc[0]
    assert un["analyte"] == "" and un["flag"] == "unmodelled" and not un["plausible"]
    assert un["value"] == 4.0 and un["unit"] == "{score}" == un["original_unit"]


def test_dates_sorting_and_columns(tmp_path):
    path = _long(tmp_path, [
        "2021-03-05T10:20:00+02:00,2160-0,1.0,mg/dL",
        "2021-03-04,777-3,250,10*3/uL",
        "2021-03-04,1751-7,4.0,g/dL",
        "2021-03-05T08:20:00Z,2160-0,1.2,mg/dL",
    ])
    df = read_labs(path, patient="P1")
    assert tuple(df.columns) == OUTPUT_COLUMNS
    assert list(df["date"]) == ["2021-03-04", "2021-03-04", "2021-03-05T08:20:00Z", "2021-03-05T08:20:00Z"]
    assert list(df["analyte"]) == ["albumin", "platelets", "creatinine", "creatinine"]
    assert list(df["source_row"]) == [4, 3, 2, 5]  # same date and analyte: by file line
    assert df["value"].dtype == "float64" and df["plausible"].dtype == bool


# ---- Synthea layout -------------------------------------------------------------------

SYNTHEA = f"""
DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE
2019-02-11T09:30:12Z,{P1},{E1},vital-signs,8302-2,Body Height,172.4,cm,numeric
2019-02-11T09:30:12Z,{P1},{E1},vital-signs,29463-7,Body Weight,81.3,kg,numeric
2019-02-11T09:30:12Z,{P1},{E1},vital-signs,8480-6,Systolic Blood Pressure,128.0,mm[Hg],numeric
2019-02-11T09:30:12Z,{P1},{E1},vital-signs,8867-4,Heart rate,400.0,/min,numeric
2019-02-11T09:30:12Z,{P1},{E1},survey,72166-2,Tobacco smoking status,Never smoked tobacco (finding),{{nominal}},text
2019-02-11T09:30:12Z,{P1},{E1},laboratory,38483-4,Creatinine,1.2,mg/dL,numeric
2019-02-11T09:30:12Z,{P1},{E1},laboratory,33914-3,Glomerular filtration rate/1.73 sq M.predicted,64.1,mL/min/{{1.73_m2}},numeric
2019-02-11T09:30:12Z,{P1},{E1},survey,72514-3,"Pain severity - 0-10 verbal numeric rating [Score] - Reported",2.0,{{score}},numeric
2019-02-11T09:30:12Z,{P2},{E1},laboratory,38483-4,Creatinine,0.9,mg/dL,numeric
2020-07-01T23:10:00Z,{P2},{E1},laboratory,718-7,Hemoglobin [Mass/volume] in Blood,13.1,g/dL,numeric
2020-07-01T23:10:00Z,{P2},{E1},laboratory,718-7,Hemoglobin [Mass/volume] in Blood,13.1,g/dLx,numeric
2021-01-05T14:00:00Z,{P3},{E1},laboratory,777-3,Platelets [#/volume] in Blood by Automated count,250.0,10*3/uL,numeric
"""


def test_synthea_subject_selection(tmp_path):
    path = _write(tmp_path / "observations.csv", SYNTHEA)
    df = read_labs(path, patient="P001", subject=P1)
    assert len(df) == 7  # 8 rows of P1, one of them text
    by = df.set_index("analyte")
    assert by.loc["creatinine", "value"] == pytest.approx(1.2 * 88.4017, abs=1e-3)
    assert by.loc["creatinine", "date"] == "2019-02-11T09:30:12Z"
    assert by.loc["egfr", "value"] == pytest.approx(64.1) and by.loc["egfr", "unit"] == "mL/min/1.73m2"
    assert by.loc["systolic_bp", "unit"] == "mmHg"
    assert by.loc["heart_rate", "flag"] == "implausible_high"
    assert (df["loinc"] == "72514-3").sum() == 1 and "72166-2" not in set(df["loinc"])
    # another subject with a bad unit in its own rows fails only for that subject
    with pytest.raises(InputError, match=r"line 12: unknown unit 'g/dLx'"):
        read_labs(path, patient="P002", subject=P2)
    assert len(read_labs(path, patient="P003", subject=P3)) == 1


def test_synthea_missing_or_wrong_subject_does_not_leak_ids(tmp_path):
    path = _write(tmp_path / "observations.csv", SYNTHEA)
    with pytest.raises(InputError) as ei:
        read_labs(path, patient="P001", display_path="synthea/observations.csv")
    msg = str(ei.value)
    assert "3 subjects" in msg and msg.startswith("patient P001: synthea/observations.csv: ")
    for uid in (P1, P2, P3, E1):
        assert uid not in msg and uid[:8] not in msg
    with pytest.raises(InputError) as ei:
        read_labs(path, patient="P009", subject="0000dead-0000-4000-8000-000000000000")
    assert "not in this file" in str(ei.value) and "0000dead" not in str(ei.value)


def test_synthea_single_subject_needs_no_subject(tmp_path):
    header, *rows = textwrap.dedent(SYNTHEA).strip().splitlines()
    # older Synthea: no CATEGORY column
    old = [header.replace("CATEGORY,", "")] + [
        ",".join(r.split(",")[:3] + r.split(",")[4:]) for r in rows if P3 in r
    ]
    path = _write(tmp_path / "obs.csv", "\n".join(old) + "\n")
    df = read_labs(path, patient="P003")
    assert list(df["value"]) == [250.0] and list(df["unit"]) == ["10^9/L"]


def test_ingest_writes_tsv_and_qc_without_identifiers(tmp_path):
    path = _write(tmp_path / "observations.csv", SYNTHEA)
    tsv, qcj = tmp_path / "out" / "labs.tsv", tmp_path / "out" / "labs_qc.json"
    qc = ingest_labs(path, tsv, qcj, patient="P001", subject=P1)
    assert qc == json.loads(qcj.read_text())
    assert qc["layout"] == "synthea" and qc["n_rows"] == 7 and qc["n_converted"] == 6
    assert qc["n_implausible"] == 1 and qc["n_unmodelled"] == 1 and qc["n_skipped_non_numeric"] == 1
    assert qc["analytes"]["creatinine"] == {
        "n": 1, "unit": "umol/L", "first_date": "2019-02-11T09:30:12Z",
        "last_date": "2019-02-11T09:30:12Z", "n_implausible": 0,
    }
    assert qc["unmodelled_codes"] == {"72514-3": 1}
    text = tsv.read_text() + qcj.read_text()
    for uid in (P1, P2, P3, E1):
        assert uid not in text
    assert str(tmp_path) not in text
    assert tsv.read_text().splitlines()[0].split("\t") == list(OUTPUT_COLUMNS)
    before = tsv.read_bytes()
    ingest_labs(path, tsv, qcj, patient="P001", subject=P1)
    assert tsv.read_bytes() == before


def test_ingest_bad_input_writes_nothing(tmp_path):
    path = _long(tmp_path, ["2021-03-04,2160-0,1.0,furlongs"])
    with pytest.raises(InputError):
        ingest_labs(path, tmp_path / "o" / "t.tsv", tmp_path / "o" / "q.json", patient="P1")
    assert not (tmp_path / "o" / "t.tsv").exists() and not (tmp_path / "o" / "q.json").exists()


# ---- demo writer ----------------------------------------------------------------------

DEMO = [
    ("2021-03-04", "creatinine", 88.4),
    ("2021-03-04", "bilirubin_total", 17.1),
    ("2021-03-04", "haemoglobin", 132.0),
    ("2021-03-04", "albumin", 38.0),
    ("2021-03-04", "platelets", 245.0),
    ("2021-03-04", "neutrophils", 3.9),
    ("2021-03-04", "glucose", 5.4),
    ("2021-03-04", "alt", 31.0),
    ("2021-03-04", "inr", 1.1),
    ("2021-03-04", "body_height", 172.0),
    ("2021-03-04", "body_weight", 70.5),
    ("2021-03-18", "creatinine", 97.0),
    ("2021-03-18", "heart_rate", 64.0),
    ("2021-03-18", "egfr", 71.0),
]


@pytest.mark.parametrize("layout", ["long", "synthea"])
def test_demo_round_trip_mixed_units(tmp_path, layout):
    path = tmp_path / f"demo_{layout}.csv"
    write_demo_labs(path, DEMO, layout=layout, units="mixed", seed=3)
    text = path.read_text()
    assert "mg/dL" in text and "[in_i]" in text and "[lb_av]" in text and "10*3/uL" in text
    subject = text.splitlines()[1].split(",")[1] if layout == "synthea" else None
    df = read_labs(path, patient="P1", subject=subject)
    assert len(df) == len(DEMO) and (df["flag"] == "").all()
    got = sorted(zip(df["date"].str[:10], df["analyte"], df["value"]))
    for (d, k, v), (gd, gk, gv) in zip(sorted(DEMO), got):
        assert (gd, gk) == (d, k)
        assert gv == pytest.approx(v, rel=1e-9)
    # the US-unit rows really were converted (creatinine 88.4 umol/L ~ 1.0 mg/dL)
    cr = df[(df["analyte"] == "creatinine") & (df["date"].str[:10] == "2021-03-04")].iloc[0]
    assert cr["original_unit"] == CONVENTIONAL_UNITS["creatinine"]
    assert cr["original_value"] == pytest.approx(1.0, abs=0.001)
    if layout == "synthea":
        out = tmp_path / "t.tsv"
        ingest_labs(path, out, tmp_path / "q.json", patient="P1", subject=subject)
        assert subject not in out.read_text() and subject not in (tmp_path / "q.json").read_text()


def test_demo_is_byte_deterministic(tmp_path):
    for layout in ("long", "synthea"):
        a, b, c = (tmp_path / f"{layout}{i}.csv" for i in range(3))
        write_demo_labs(a, DEMO, layout=layout, seed=7)
        write_demo_labs(b, DEMO, layout=layout, seed=7)
        write_demo_labs(c, DEMO, layout=layout, seed=8)
        assert a.read_bytes() == b.read_bytes()
        if layout == "synthea":
            assert a.read_bytes() != c.read_bytes()  # seed only changes the synthetic ids


def test_demo_canonical_units(tmp_path):
    path = tmp_path / "c.csv"
    write_demo_labs(path, DEMO[:3], units="canonical")
    assert path.read_text().splitlines() == [
        "date,code,value,unit",
        "2021-03-04,2160-0,88.4,umol/L",
        "2021-03-04,1975-2,17.1,umol/L",
        "2021-03-04,718-7,132,g/L",
    ]
    with pytest.raises(ValueError):
        write_demo_labs(path, [("2021-03-04", "nonsense", 1.0)])
