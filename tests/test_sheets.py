"""The input contract: sheet loading, per-patient and structural errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinflow.errors import InputError
from twinflow.sheets import load_cohort, parse_date

PAT = "patient_id\ttwin_model\tsex\tage_years\theight_cm\tweight_kg\tgermline_vcf\tgermline_sample\tsomatic_vcf\tlabs\n"
IMG = "patient_id\tvisit\tdate\tseries\tpath\tlabel_path\n"
TRT = "patient_id\tdate\tkind\tagent\tdose\tunit\n"


def write(d: Path, pat: str, img: str, trt: str) -> tuple[Path, Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in (("patients.tsv", pat), ("imaging.tsv", img), ("treatments.tsv", trt)):
        (d / name).write_text(text)
    return d / "patients.tsv", d / "imaging.tsv", d / "treatments.tsv"


def test_paths_resolve_against_the_sheet_folder(tmp_path):
    sheets = tmp_path / "cohort" / "sheets"
    p = write(sheets, PAT + "P1\toncology\tF\t50\t165\t60\t../raw/P1.vcf.gz\tS1\t\t\n",
              IMG + "P1\tV1\t2024-01-02\tT1\timg/t1.nii.gz\t\n"
                    "P1\tV2\t2024-02-02\tT1\timg/t1b.nii.gz\tlab.nii.gz\n",
              TRT + "P1\t2024-01-10\tradiotherapy\tphoton\t2\tGy\n")
    c = load_cohort(*p, workdir=tmp_path)
    assert c.patient_ids == ["P1"]
    assert c.patients["P1"]["germline_vcf"] == "cohort/raw/P1.vcf.gz"
    assert c.patients["P1"]["germline_vcf_display"] == "../raw/P1.vcf.gz"
    rows = c.images["P1"]
    assert [(r.visit, r.path) for r in rows] == [("V1", "cohort/sheets/img/t1.nii.gz"), ("V2", "cohort/sheets/img/t1b.nii.gz")]
    assert rows[1].label_path == "cohort/sheets/lab.nii.gz"
    assert c.treatments["P1"][0]["dose"] == 2.0
    assert c.invalid == {}


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "x" * 65, "", "p 1", "p.1"])
def test_unsafe_patient_id_is_refused_before_anything_runs(tmp_path, bad_id):
    p = write(tmp_path, PAT + f"{bad_id}\toncology\tF\t50\t165\t60\t\t\t\t\n", IMG, TRT)
    with pytest.raises(InputError, match="patient_id") as e:
        load_cohort(*p, workdir=tmp_path)
    assert "patients.tsv" in str(e.value)


def test_malformed_date_invalidates_only_that_patient(tmp_path):
    p = write(tmp_path, PAT + "P1\toncology\tF\t50\t165\t60\t\t\t\t\nP2\toncology\tM\t60\t180\t80\t\t\t\t\n",
              IMG + "P1\tV1\t2024-13-40\tT1\ta.nii.gz\t\nP2\tV1\t2024-01-01\tT1\tb.nii.gz\t\n", TRT)
    c = load_cohort(*p, workdir=tmp_path)
    assert set(c.invalid) == {"P1"}
    msg = c.invalid["P1"]
    assert msg.startswith("patient P1: ") and "imaging.tsv" in msg and "2024-13-40" in msg
    assert [r.visit for r in c.images["P2"]] == ["V1"]


def test_duplicate_patient_id_is_reported_for_that_patient(tmp_path):
    p = write(tmp_path, PAT + "P1\toncology\tF\t50\t165\t60\t\t\t\t\nP1\toncology\tF\t51\t165\t60\t\t\t\t\n"
                              "P2\toncology\tM\t60\t180\t80\t\t\t\t\n", IMG, TRT)
    c = load_cohort(*p, workdir=tmp_path)
    assert set(c.invalid) == {"P1"} and "duplicate patient_id" in c.invalid["P1"]


def test_image_listed_twice_and_visit_with_two_dates(tmp_path):
    p = write(tmp_path, PAT + "P1\toncology\tF\t50\t165\t60\t\t\t\t\nP2\toncology\tF\t50\t165\t60\t\t\t\t\n",
              IMG + "P1\tV1\t2024-01-01\tT1\ta.nii.gz\t\nP1\tV1\t2024-01-01\tT1\tb.nii.gz\t\n"
                    "P2\tV1\t2024-01-01\tT1\ta.nii.gz\t\nP2\tV1\t2024-01-02\tFLAIR\tb.nii.gz\t\n", TRT)
    c = load_cohort(*p, workdir=tmp_path)
    assert "listed twice" in c.invalid["P1"]
    assert "two different dates" in c.invalid["P2"]


def test_unknown_patient_in_imaging_sheet(tmp_path):
    p = write(tmp_path, PAT + "P1\toncology\tF\t50\t165\t60\t\t\t\t\n", IMG + "P9\tV1\t2024-01-01\tT1\ta.nii.gz\t\n", TRT)
    with pytest.raises(InputError, match="P9.*not in the patients sheet"):
        load_cohort(*p, workdir=tmp_path)


def test_missing_column_and_missing_sheet(tmp_path):
    p = write(tmp_path, "patient_id\tsex\nP1\tF\n", IMG, TRT)
    with pytest.raises(InputError, match="missing required column.*twin_model"):
        load_cohort(*p, workdir=tmp_path)
    with pytest.raises(InputError, match="sheet not found"):
        load_cohort(tmp_path / "nope.tsv", p[1], p[2], workdir=tmp_path)


def test_non_numeric_value_fails_only_its_patient(tmp_path):
    p = write(tmp_path, PAT + "P1\toncology\tF\tfifty\t165\t60\t\t\t\t\nP2\toncology\tF\t50\t165\t60\t\t\t\t\n", IMG, TRT)
    c = load_cohort(*p, workdir=tmp_path)
    assert set(c.invalid) == {"P1"}
    assert c.invalid["P1"] == f"patient P1: {p[0]}: row 2, column age_years must be a number, got 'fifty'"


SCHEMAS = Path(__file__).resolve().parents[1] / "config" / "schemas"


@pytest.mark.parametrize("sheet,row,expected", [
    ("patients", "BAD\toncology\tF\t-3\t165\t60\t\t\t\t\n", "row 3, column age_years: -3 is less than the minimum of 0"),
    ("patients", "BAD\toncology\tF\t50\t1750\t60\t\t\t\t\n", "row 3, column height_cm: 1750 is greater than the maximum of 260"),
    ("patients", "BAD\toncolgy\tF\t50\t165\t60\t\t\t\t\n", "row 3, column twin_model: unknown twin model 'oncolgy' (known: cardiac, oncology, pregnancy); did you mean 'oncology'?"),
    ("treatments", "BAD\t2024-01-02\tdrug\ttemozolomide\t-75\tmg/m2\n", "row 2, column dose: -75 is less than or equal to the minimum of 0"),
    ("treatments", "BAD\t2024-01-02\tdrug\ttemozolomide\t75\tmg/day\n", "row 2, 'mg/day' is not one of"),
])
def test_a_bad_value_fails_its_patient_not_the_cohort(tmp_path, sheet, row, expected):
    pat = PAT + "GOOD\toncology\tF\t50\t165\t60\t\t\t\t\n"
    trt = TRT
    if sheet == "patients":
        pat += row
    else:
        pat += "BAD\toncology\tF\t50\t165\t60\t\t\t\t\n"
        trt += row
    p = write(tmp_path, pat, IMG, trt)
    c = load_cohort(*p, workdir=tmp_path, schema_dir=SCHEMAS, models={"oncology", "cardiac"})
    assert set(c.invalid) == {"BAD"}
    assert c.invalid["BAD"].startswith(f"patient BAD: {tmp_path / (sheet + '.tsv')}: {expected}"), c.invalid["BAD"]
    assert "GOOD" in c.valid_ids


def test_an_empty_cohort_is_an_error(tmp_path):
    p = write(tmp_path, PAT, IMG, TRT)
    with pytest.raises(InputError, match="no patients"):
        load_cohort(*p, workdir=tmp_path)


def test_digest_follows_the_data_not_the_spelling(tmp_path):
    """The same files written as absolute paths, in sheets moved elsewhere, give the same
    digest; a changed value gives another."""
    data = tmp_path / "data"
    rel = write(tmp_path / "a", PAT + "P1\toncology\tF\t50\t165\t60\t\t\t\t\n",
                IMG + "P1\tV1\t2024-01-02\tT1\t../data/t1.nii.gz\t\n", TRT + "P1\t2024-01-03\tradiotherapy\tphoton\t2\tGy\n")
    ab = write(tmp_path / "b" / "c", PAT + "P0\toncology\tF\t50\t165\t60\t\t\t\t\nP1\toncology\tF\t50\t165\t60\t\t\t\t\n",
               IMG + f"P1\tV1\t2024-01-02\tT1\t{data / 't1.nii.gz'}\t\n",
               TRT + "P0\t2024-01-01\tradiotherapy\tphoton\t2\tGy\nP1\t2024-01-03\tradiotherapy\tphoton\t2\tGy\n")
    a = load_cohort(*rel, workdir=tmp_path)
    b = load_cohort(*ab, workdir=tmp_path)
    assert a.record("P1")["images"][0]["path_display"] != b.record("P1")["images"][0]["path_display"]
    assert a.digest("P1") == b.digest("P1")
    c = load_cohort(*write(tmp_path / "d", PAT + "P1\toncology\tF\t50\t165\t61\t\t\t\t\n",
                           IMG + f"P1\tV1\t2024-01-02\tT1\t{data / 't1.nii.gz'}\t\n",
                           TRT + "P1\t2024-01-03\tradiotherapy\tphoton\t2\tGy\n"), workdir=tmp_path)
    assert c.digest("P1") != a.digest("P1")


@pytest.mark.parametrize("text,ok", [("2024-02-29", True), ("2023-02-29", False), ("2024-1-5", False),
                                     ("2024-01-05T10:20:00Z", True), ("05/01/2024", False)])
def test_parse_date(text, ok):
    if ok:
        assert parse_date(text).isoformat() == text[:10]
    else:
        with pytest.raises(ValueError):
            parse_date(text)


def test_sheet_loading_is_linear_in_cohort_size(tmp_path):
    """10,000 patients x 5 images load in well under the time a quadratic look-up would take;
    the number we check is structural (one row per image, grouped once), not wall time."""
    n = 10000
    pat = PAT + "".join(f"P{i}\toncology\tF\t50\t165\t60\t\t\t\t\n" for i in range(n))
    img = IMG + "".join(f"P{i}\tV1\t2024-01-01\t{s}\tx.nii.gz\t\n" for i in range(n) for s in ("T1", "T2", "FLAIR", "ADC", "T1post"))
    c = load_cohort(*write(tmp_path, pat, img, TRT), workdir=tmp_path)
    assert len(c.patients) == n and sum(len(v) for v in c.images.values()) == 5 * n


def test_resolve_matches_pathlib_relative_to(tmp_path):
    """Sheet paths for Snakemake: relative to the working directory below it, absolute elsewhere."""
    import os
    from pathlib import Path

    from twinflow.sheets import resolve

    def reference(value, sheet_dir, workdir):
        p = Path(os.path.normpath(sheet_dir / value)) if not os.path.isabs(value) else Path(os.path.normpath(value))
        try:
            return str(p.relative_to(workdir))
        except ValueError:
            return str(p)

    wd = tmp_path / "wd"
    cases = [("a/b.nii.gz", wd / "sheets"), ("../data/x.vcf.gz", wd / "sheets"), ("../../out.csv", wd / "s"),
             ("..", wd / "s"), (str(wd / "x" / "y.nrrd"), wd), (str(tmp_path / "wdx" / "y"), wd),
             ("/elsewhere/./z//w.nii", wd), ("c d/e f.csv", wd)]
    for value, sheet_dir in cases:
        assert resolve(value, sheet_dir, wd) == reference(value, sheet_dir, wd), value
    assert resolve("x", Path("/"), Path("/")) == "x"


def test_records_match_pandas_to_dict(tmp_path):
    """records() is to_dict("records") built column-wise: same keys, values and Python types."""
    from twinflow.sheets import PATIENT_COLUMNS, PATIENT_OPTIONAL, read_sheet, records

    p = tmp_path / "patients.tsv"
    p.write_text("patient_id\ttwin_model\tage_years\tweight_kg\tgermline_vcf\n"
                 "P1\toncology\t54\t\tg.vcf\n"
                 "P2\tcardiac\t\t71.5\t\n")
    frame = read_sheet(p, PATIENT_COLUMNS[:2], PATIENT_OPTIONAL, ("age_years", "weight_kg"))
    want, got = frame.to_dict("records"), records(frame)
    assert len(got) == 2 and got[0].keys() == want[0].keys()
    for w, g in zip(want, got):
        for k in w:
            assert type(g[k]) is type(w[k]), k
            assert g[k] == w[k] or (g[k] != g[k] and w[k] != w[k])      # NaN in numeric columns
