"""Sheet validation by distinct values gives the same verdict as snakemake.utils.validate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate as sm_validate

from twinflow.errors import InputError
from twinflow.schema import load_schema, validate_frame

SCHEMAS = Path(__file__).resolve().parents[1] / "config" / "schemas"

# per column: values that pass and values that fail the column's own sub-schema
GOOD = {
    "patient_id": ["P1", "onc-002", "A_b"], "visit": ["V1", "baseline"], "series": ["T1", "FLAIR"],
    "date": ["2024-01-01", "whatever"], "path": ["a.nii.gz"], "label_path": ["l.nrrd", None],
    "roi": ["1,2,3,4,5,6", " -1.5, 2 ,3,4,5,6 ", None], "dicom_series": ["3", None],
    "twin_model": ["oncology", "cardiac"], "sex": ["F", "M"], "age_years": [0.0, 54.0, 130.0],
    "height_cm": [165.0, 260.0], "weight_kg": [60.0, 1.5], "labs": [None, "l.csv"],
    "pgx_missing_as_reference": [None, "yes", "0"], "agent": ["TMZ", "RT"], "dose": [2.0, 75.0],
}
BAD = {
    "patient_id": ["../x", "a b", "x" * 65], "visit": ["V 1"], "series": ["T1/post"], "roi": ["1,2,3"],
    "twin_model": ["liver"], "sex": ["X"], "age_years": [-1.0, 131.0], "height_cm": [30.0],
    "weight_kg": [1.0, 401.0], "pgx_missing_as_reference": ["maybe"], "agent": [""], "dose": [0.0, -2.0],
}


def snakemake_verdict(frame: pd.DataFrame, name: str) -> bool:
    try:
        sm_validate(frame.copy(), str(SCHEMAS / f"{name}.schema.yaml"), set_default=False)
        return True
    except (WorkflowError, Exception):
        return False


def our_verdict(frame: pd.DataFrame, name: str) -> bool:
    try:
        validate_frame(frame, load_schema(str(SCHEMAS / f"{name}.schema.yaml")), sheet=f"{name}.tsv")
        return True
    except InputError:
        return False


def random_frame(rng, name: str, n: int, p_bad: float) -> pd.DataFrame:
    schema = load_schema(str(SCHEMAS / f"{name}.schema.yaml"))
    cols = list(schema["properties"])
    rows = []
    for _ in range(n):
        row = {}
        for c in cols:
            if c == "kind":
                row[c] = rng.choice(["radiotherapy", "drug", "surgery"] if rng.random() < p_bad else ["radiotherapy", "drug"])
            elif c == "unit":
                row[c] = rng.choice(["Gy", "mg", "mg/m2", "mL"] if rng.random() < p_bad else ["Gy", "mg/m2"])
            elif c in BAD and rng.random() < p_bad:
                row[c] = BAD[c][rng.integers(len(BAD[c]))]
            else:
                vals = GOOD.get(c, ["x"])
                row[c] = vals[rng.integers(len(vals))]
            if c not in schema.get("required", []) and rng.random() < 0.2:
                row[c] = None
            elif c in schema.get("required", []) and rng.random() < p_bad / 4:
                row[c] = None
        rows.append(row)
    frame = pd.DataFrame(rows, columns=cols)
    if name == "treatments":        # make RT rows consistent with the unit rule unless "bad"
        ok = rng.random(n) >= p_bad
        frame.loc[ok & (frame["kind"] == "radiotherapy"), "unit"] = "Gy"
        frame.loc[ok & (frame["kind"] == "drug"), "unit"] = "mg/m2"
    return frame


@pytest.mark.parametrize("name", ["patients", "imaging", "treatments"])
def test_same_verdict_as_snakemake_validate(name):
    rng = np.random.default_rng(11)
    verdicts = []
    for trial in range(60):
        frame = random_frame(rng, name, n=int(rng.integers(1, 8)), p_bad=0.0 if trial % 3 == 0 else 0.08)
        theirs, ours = snakemake_verdict(frame, name), our_verdict(frame, name)
        assert ours == theirs, frame.to_dict("records")
        verdicts.append(ours)
    assert any(verdicts) and not all(verdicts)        # both kinds of frame were exercised


def test_cross_column_rule_and_row_number_in_message():
    frame = pd.DataFrame([
        {"patient_id": "P1", "date": "2024-01-01", "kind": "radiotherapy", "agent": "RT", "dose": 2.0, "unit": "Gy"},
        {"patient_id": "P1", "date": "2024-01-02", "kind": "radiotherapy", "agent": "RT", "dose": 2.0, "unit": "mg"},
    ])
    with pytest.raises(InputError) as e:
        validate_frame(frame, load_schema(str(SCHEMAS / "treatments.schema.yaml")), sheet="treatments.tsv")
    assert "row 3" in str(e.value) and "treatments.tsv" in str(e.value) and "'mg'" in str(e.value)


def test_unsafe_id_is_named_with_its_column():
    frame = pd.DataFrame([{"patient_id": "ok", "visit": "V1", "date": "d", "series": "T1", "path": "p"},
                          {"patient_id": "../x", "visit": "V1", "date": "d", "series": "T1", "path": "p"}])
    with pytest.raises(InputError) as e:
        validate_frame(frame, load_schema(str(SCHEMAS / "imaging.schema.yaml")), sheet="imaging.tsv")
    assert "row 3, column patient_id" in str(e.value) and "does not match" in str(e.value)


def test_whole_record_keywords_see_every_column():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    validate_frame(pd.DataFrame([{"a": "x", "b": None}]), schema, sheet="s")     # empty cell = absent
    with pytest.raises(InputError, match="Additional properties"):
        validate_frame(pd.DataFrame([{"a": "x", "b": "y"}]), schema, sheet="s")
