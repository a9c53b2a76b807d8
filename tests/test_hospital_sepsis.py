"""The real sepsis event log (4TU, Mannhardt 2016; ../shared/data/eventlogs/sepsis.csv):
ingest, process discovery checked against pm4py, and validation on held-out months."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from twinflow.hospital.config import resolve_site
from twinflow.hospital.eventlog import ingest
from twinflow.hospital.fit import directly_follows, fit_site, instance_hours, week_origin
from twinflow.hospital.scenarios import replicate
from twinflow.hospital.sim import END, START
from twinflow.hospital.validate import validate

pytestmark = pytest.mark.shared_data
KEY = b"sepsis-test-key"

#: the site entry used for every figure quoted in docs/hospital.md (one fixed setting)
SEPSIS = {
    "csv": {"sep": ";", "timestamp_format": "%Y/%m/%d %H:%M:%S.%f"},
    "columns": {"case": "Case ID", "activity": "Activity", "timestamp": "Complete Timestamp", "resource": "org:group"},
    "end_activities": ["Release A", "Release B", "Release C", "Release D", "Release E"],
    "areas": {"ED": ["ER Registration", "ER Triage", "ER Sepsis Triage", "IV Liquid", "IV Antibiotics"],
              "NC": ["Admission NC"], "IC": ["Admission IC"]},
    "default_area": "ED",
    "key_events": {"door_to_antibiotics": {"from": "ER Registration", "to": "IV Antibiotics", "within_h": 1}},
    "targets": {"ed_over_4h": {"area": "ED", "over_h": 4}},
    "validate_from": "2014-11-01", "warmup_days": 28, "drain_days": 28, "replications": 10, "seed": 1,
}


@pytest.fixture(scope="module")
def sepsis(shared_data):
    log = shared_data / "eventlogs" / "sepsis.csv"
    cfg = resolve_site("sepsis", {"log": str(log), **SEPSIS})
    inst, qc = ingest(cfg, log, KEY)
    return log, cfg, inst, qc


def test_sepsis_ingest(sepsis):
    log, _, inst, qc = sepsis
    assert qc["counts"]["rows_read"] == 15214
    assert qc["cases"] == 1050  # one case id is the string "NA": kept, not read as missing
    assert qc["counts"]["events_after_end_dropped"] == 306  # returns after a release are later stays
    assert qc["counts"]["unparseable_timestamp"] == 0 and qc["counts"]["cases_out_of_order"] == 0
    raw = set(pd.read_csv(log, sep=";", dtype=str, keep_default_na=False)["Case ID"])
    assert not set(inst["case"]) & raw


def test_sepsis_directly_follows_matches_pm4py(shared_data):
    pm4py = pytest.importorskip("pm4py")
    log = shared_data / "eventlogs" / "sepsis.csv"
    cfg = resolve_site("sepsis", {"log": str(log), **{k: v for k, v in SEPSIS.items()
                                                        if k not in ("end_activities", "areas")}})
    inst, _ = ingest(cfg, log, KEY)
    df = instance_hours(inst, week_origin(inst["end"].min()))
    df["state"] = df["activity"]
    df["next"] = df.groupby("case")["state"].shift(-1).fillna(END)
    ours = {k: int(v) for k, v in directly_follows(df).groupby(level=[1, 2]).sum().items()}
    raw = pd.read_csv(log, sep=";", dtype=str, keep_default_na=False)
    raw["ts"] = pd.to_datetime(raw["Complete Timestamp"], format="%Y/%m/%d %H:%M:%S.%f")
    dfg, starts, ends = pm4py.discover_dfg(pm4py.format_dataframe(raw, case_id="Case ID", activity_key="Activity",
                                                                  timestamp_key="ts"))
    theirs = {**{k: int(v) for k, v in dfg.items()}, **{(START, a): int(n) for a, n in starts.items()},
              **{(a, END): int(n) for a, n in ends.items()}}
    assert ours == theirs
    assert sum(v for (a, _), v in ours.items() if a == START) == 1050


def test_sepsis_validation_figures(sepsis):
    _, cfg, inst, _ = sepsis
    model, summary = fit_site(inst, cfg)
    assert summary["training"]["cases"] > 800
    reps = [replicate(model, cfg["seed"], r) for r in range(cfg["replications"])]
    v, hourly = validate(inst, model, [r[0] for r in reps], [r[1] for r in reps])
    print(json.dumps({k: v[k] for k in ("census", "arrivals", "los", "key_events", "beats_baseline")}, indent=1))
    nc = v["census"]["NC"]
    assert 5 < nc["observed_mean"] < 15 and 0 < nc["mae_rel"] < 1.5
    assert 0.3 < nc["daily_band_share"] <= 1.0
    assert 0 < v["los"]["ks"] < 0.3 and 0 < v["los"]["baseline_ks"] < 0.3
    ke = v["key_events"]["door_to_antibiotics"]
    assert 1.0 < ke["observed_mean_h"] < 5.0 and 0.15 < ke["observed_share_within"] < 0.5
    assert 0.5 < ke["simulated_mean_h"] < 10.0 and ke["ks"] < 0.4
    assert v["arrivals"]["observed_total"] == 199
    assert set(hourly["series"]) == {"ED", "NC", "IC", "all", "arrivals"}
