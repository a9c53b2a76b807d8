"""Inputs of the pregnancy twin: pregnancies.tsv, dating, pregnancy labs with their analyser,
and the visit MAP by the FMF protocol."""

from __future__ import annotations

import math

from pathlib import Path

import pandas as pd
import pytest

from twinflow.errors import InputError
from twinflow.io.labs import read_labs
from twinflow.models.pregnancy.dating import Dating, ga_days_from_crl
from twinflow.models.pregnancy.measurements import biomarker, protocol_map
from twinflow.models.pregnancy.sheet import COLUMNS, read_pregnancies
from twinflow.schema import validate_frame

BASE = dict(patient_id="P1", pregnancy="P1", fetuses="1", ethnicity="white", smoker="no", conception="spontaneous",
            chronic_hypertension="no", diabetes="none", sle="no", aps="no", mother_had_pe="no", parous="yes",
            previous_pe="no", previous_ga_weeks="39", previous_delivery_date="2020-05-01", crl_mm="60",
            crl_date="2024-03-04")


def _sheet(tmp_path, rows):
    cols = list(dict.fromkeys(c for r in rows for c in r))
    p = tmp_path / "pregnancies.tsv"
    p.write_text("\t".join(cols) + "\n" + "".join("\t".join(r.get(c, "") for c in cols) + "\n" for r in rows))
    return p


def test_crl_dating_by_hand():
    # Robinson and Fleming: 8.052 * sqrt(60 * 1.037) + 23.73 = 87.24 days (12+3 weeks)
    assert ga_days_from_crl(60.0) == pytest.approx(8.052 * math.sqrt(62.22) + 23.73, rel=1e-12)
    d = Dating(crl_mm=60.0, crl_date="2024-03-04")
    assert d.ga_weeks("2024-03-04") == pytest.approx(87.2439 / 7, abs=1e-4)
    assert d.ga_weeks("2024-05-10") == pytest.approx((87.2439 + 67) / 7, abs=1e-4)
    assert Dating(ga_weeks=12.0, ga_date="2024-01-10").start_date().isoformat() == "2023-10-18"
    with pytest.raises(ValueError, match="outside"):
        ga_days_from_crl(120)


def test_pregnancies_sheet_reads_and_computes_the_interval(tmp_path):
    rec = read_pregnancies(_sheet(tmp_path, [BASE]))["P1"][0]
    assert rec.parous and not rec.previous_pe and rec.previous_ga_weeks == 39.0
    start = Dating(crl_mm=60.0, crl_date="2024-03-04").start_date()
    assert rec.interval_years() == pytest.approx((start - pd.Timestamp("2020-05-01").date()).days / 365.25, abs=2e-3)


@pytest.mark.parametrize("change,message", [
    (dict(ethnicity="asian"), "ethnicity must be one of"),
    (dict(parous="maybe"), "parous must be yes or no"),
    (dict(previous_delivery_date=""), "needs previous_delivery_date"),
    (dict(crl_mm="", crl_date=""), "no dating"),
    (dict(crl_date=""), "crl_mm and crl_date go together"),
    (dict(crl_mm="150"), "outside"),
    (dict(fetuses="0"), "fetuses must be a whole number"),
    (dict(parous="no", previous_pe="yes"), "previous_pe is yes but parous is no"),
    (dict(previous_delivery_date="2024-09-01"), "not before the start of this pregnancy"),
    (dict(crl_date="04/03/2024"), "not an ISO date"),
])
def test_pregnancies_sheet_errors_name_patient_sheet_and_row(tmp_path, change, message):
    p = _sheet(tmp_path, [dict(BASE, patient_id="P0"), dict(BASE, **change)])
    with pytest.raises(InputError) as e:
        read_pregnancies(p, display="sheets/pregnancies.tsv")
    assert str(e.value).startswith("patient P1: sheets/pregnancies.tsv: row 3:") and message in str(e.value)


def test_pregnancies_schema_accepts_the_demo_rows_and_rejects_bad_enums(tmp_path):
    from twinflow.demo.pregnancy import sheet_rows, write_pregnancies_tsv

    rows = sheet_rows("data")["pregnancies"]
    write_pregnancies_tsv(tmp_path / "p.tsv", rows)
    df = pd.read_csv(tmp_path / "p.tsv", sep="\t", dtype=str, keep_default_na=False).replace({"": None})
    for c in ("fetuses",):
        df[c] = pd.to_numeric(df[c])
    for c in ("crl_mm", "previous_ga_weeks"):
        df[c] = pd.to_numeric(df[c])
    from twinflow.schema import load_schema

    schema = load_schema(str(Path(__file__).resolve().parents[1] / "twinflow" / "models" / "pregnancy" / "pregnancies.schema.yaml"))
    validate_frame(df, schema, sheet="pregnancies.tsv")
    bad = df.copy()
    bad.loc[0, "diabetes"] = "gestational"
    with pytest.raises(InputError, match="diabetes"):
        validate_frame(bad, schema, sheet="pregnancies.tsv")
    assert set(COLUMNS) <= set(df.columns)
    assert read_pregnancies(tmp_path / "p.tsv").keys() == {"PREG001", "PREG002"}


def _labs(tmp_path, rows):
    p = tmp_path / "labs.csv"
    p.write_text("date,code,value,unit,analyser,body_site\n" + "\n".join(rows) + "\n")
    return p


def test_pregnancy_biomarkers_need_a_known_analyser(tmp_path):
    df = read_labs(_labs(tmp_path, ["2024-03-04,74755-0,30.5,pg/mL,DELFIA,", "2024-03-04,74756-8,1500,ng/L,kryptor,"]),
                   patient="P1")
    assert list(df["analyte"]) == ["plgf", "sflt1"] and list(df["analyser"]) == ["delfia", "kryptor"]
    assert df["value"].iloc[1] == pytest.approx(1500.0)                     # ng/L = pg/mL
    with pytest.raises(InputError, match="line 2: plgf .* needs the analyser"):
        read_labs(_labs(tmp_path, ["2024-03-04,74755-0,30.5,pg/mL,,"]), patient="P1")
    with pytest.raises(InputError, match="unknown analyser 'elisa-x' for papp_a_mass"):
        read_labs(_labs(tmp_path, ["2024-03-04,48407-1,1.2,mg/L,elisa-x,"]), patient="P1")


def test_protocol_map_pairs_readings_by_time_and_arm(tmp_path):
    rows = []
    for k, (arm, s, d) in enumerate([("left arm", 120, 80), ("right arm", 118, 76), ("left arm", 116, 78),
                                     ("right arm", 122, 82)]):
        rows += [f"2024-03-04T09:1{k}:00,8480-6,{s},mm[Hg],,{arm}", f"2024-03-04T09:1{k}:00,8462-4,{d},mm[Hg],,{arm}"]
    rows += ["2024-03-06T10:00:00,74755-0,25,pg/mL,cobas,", "2024-01-01,8480-6,150,mm[Hg],,left arm"]
    labs = read_labs(_labs(tmp_path, rows), patient="P1")
    m = protocol_map(labs, "2024-03-04")
    expect = sum(d + (s - d) / 3 for s, d in [(120, 80), (118, 76), (116, 78), (122, 82)]) / 4
    assert m["map_mmhg"] == pytest.approx(expect) and m["n_readings"] == 4 and not m["notes"]
    b = biomarker(labs, "2024-03-04", "plgf")
    assert b == {"value": 25.0, "unit": "pg/mL", "analyser": "cobas", "date": "2024-03-06"}
    assert biomarker(labs, "2024-05-04", "plgf") is None
    one = protocol_map(labs[labs["body_site"] == "left arm"], "2024-03-04")
    assert one["n_readings"] == 2 and "two readings on each arm" in one["notes"][0]
