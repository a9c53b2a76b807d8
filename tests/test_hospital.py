"""Hospital operations twin: fit recovery on the demo log, QC of bad logs, engine checks
against queueing theory, scenarios, determinism, pseudonymisation and the artefact."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twinflow.demo import eventlog as demo_log
from twinflow.hospital import nelson
from twinflow.hospital.artefact import verify
from twinflow.hospital.config import resolve_site
from twinflow.hospital.distributions import fit_duration, mean_of, sampler
from twinflow.hospital.eventlog import EventLogError, ingest
from twinflow.hospital.fit import fit_site
from twinflow.hospital.scenarios import apply_scenario, comparison_table, replicate
from twinflow.hospital.sim import END, START, simulate
from twinflow.hospital.workflow import run_site
from twinflow.errors import InputError

KEY = b"test-key-0123"
DEMO_RAW = {"columns": {"class": "case:acuity"}, "end_activities": ["Admission", "Discharge"],
            "resources": {"lab": None}, "class_priority": {"major": 0, "minor": 1}}


@pytest.fixture(scope="module")
def demo_csv(tmp_path_factory) -> Path:
    return demo_log.write(tmp_path_factory.mktemp("demo") / "demo_ed.csv")


@pytest.fixture(scope="module")
def demo_fit(demo_csv):
    # everything but the last day is training: the fit sees ~6 weeks
    cfg = resolve_site("demo_ed", {"log": str(demo_csv), "validate_from": "2024-02-11", **DEMO_RAW})
    inst, qc = ingest(cfg, demo_csv, KEY)
    model, summary = fit_site(inst, cfg)
    return inst, qc, model, summary


# ------------------------------------------------------------------ fit recovers the truth


def test_fit_recovers_arrival_rates(demo_fit):
    _, _, model, summary = demo_fit
    truth = demo_log.truth_model()["arrivals"]
    fitted, true = np.array(model["arrivals"]["rate_per_h"]), np.array(truth["rate_per_h"])
    # both are rates at the same origin (Monday 2024-01-01 00:00) before the trend
    assert model["arrivals"]["origin"] == "2024-01-01T00:00:00"
    rel = np.abs(fitted / true - 1)
    assert rel.mean() < 0.08, rel.mean()
    assert abs(fitted.sum() / true.sum() - 1) < 0.05
    hod_f, hod_t = fitted.reshape(7, 24).mean(0), true.reshape(7, 24).mean(0)
    assert np.all(np.abs(hod_f / hod_t - 1) < 0.25), hod_f / hod_t
    lo, hi = summary["arrivals"]["trend_ci95"]
    half = (hi - lo) / 2 * 2.576 / 1.96  # 99 % interval
    assert abs(summary["arrivals"]["trend_per_week"] - truth["trend_per_week"]) < half


def test_fit_recovers_routing_and_class_mix(demo_fit):
    _, _, model, summary = demo_fit
    truth = demo_log.truth_model()
    n_major = sum(summary["routing_counts"]["major"][START].values())
    n_all = n_major + sum(summary["routing_counts"]["minor"][START].values())
    p = model["classes"]["p"][model["classes"]["names"].index("major")]
    assert abs(p - 0.35) < 4 * math.sqrt(0.35 * 0.65 / n_all)
    checked = 0
    for cls, rows in truth["routing"].items():
        for src, row in rows.items():
            n = sum(summary["routing_counts"][cls][src].values())
            for dst, pt in row.items():
                pf = model["routing"][cls][src].get(dst, 0.0)
                tol = 4 * math.sqrt(max(pt * (1 - pt), 0.01) / n)
                assert abs(pf - pt) < tol, (cls, src, dst, pf, pt, n)
                checked += 1
    assert checked == 18


def test_fit_recovers_service_means_delays_and_capacities(demo_fit):
    inst, _, model, summary = demo_fit
    truth = demo_log.truth_model()
    for act in ("Registration", "Triage", "Assessment", "Blood tests", "Treatment"):
        t = truth["activities"][act]["service"]
        n = summary["service"][act]["n"]
        got = mean_of(model["activities"][act]["service"])
        assert abs(got - t["mean"]) < 4 * t["sd"] / math.sqrt(n), (act, got * 60, t["mean"] * 60)
    # delays: before Admission (a bed, lognormal 120 +- 90 min) and Discharge (exponential 10 min)
    for act, sd in (("Admission", 1.5), ("Discharge", 10 / 60)):
        t = mean_of(truth["activities"][act]["delay"])
        n = summary["delay"][act]["n"]
        assert abs(mean_of(model["activities"][act]["delay"]) - t) < 4 * sd / math.sqrt(n)
    # queueing activities have no delay of their own: the gaps are all queueing
    assert mean_of(model["activities"]["Assessment"]["delay"]) < 1 / 60
    caps = {k: v["capacity"] for k, v in model["resources"].items()}
    assert caps == {"reception": 1, "triage_nurse": 2, "doctor": 3, "cubicle": 4}
    assert summary["resources"]["lab"]["method"] == "config"


# -------------------------------------------------------------------------- bad logs


def _log(tmp_path: Path, rows: list[tuple], header=("case:concept:name", "concept:name", "time:timestamp")) -> Path:
    p = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=list(header)).to_csv(p, index=False)
    return p


GOOD = [("P-SECRET-1", "Arrive", "2024-01-01T10:00:00"), ("P-SECRET-1", "Leave", "2024-01-01T12:00:00"),
        ("P-SECRET-2", "Arrive", "2024-01-01T11:00:00"), ("P-SECRET-2", "Leave", "2024-01-01T11:30:00")]


def _ingest(path: Path, **raw):
    cfg = resolve_site("site_1", {"log": str(path), "validate_from": "2024-02-01", **raw})
    return ingest(cfg, path, KEY)


def test_unparseable_timestamp_is_a_named_error_or_a_counted_repair(tmp_path):
    p = _log(tmp_path, GOOD + [("P-SECRET-3", "Arrive", "yesterday"), ("P-SECRET-3", "Leave", "2024-01-01T13:00:00")])
    with pytest.raises(EventLogError) as e:
        _ingest(p)
    assert e.value.code == "unparseable_timestamp"
    assert "row 6" in str(e.value) and "SECRET" not in str(e.value)
    inst, qc = _ingest(p, qc={"unparseable_timestamp": "drop"})
    assert qc["counts"]["unparseable_timestamp"] == 1
    assert qc["counts"]["single_event_cases"] == 1  # what is left of P-SECRET-3
    assert qc["cases"] == 2


def test_events_out_of_order_are_sorted_or_refused(tmp_path):
    p = _log(tmp_path, [GOOD[1], GOOD[0]] + GOOD[2:])
    inst, qc = _ingest(p)
    assert qc["counts"]["cases_out_of_order"] == 1
    first = inst.sort_values("end").groupby("case")["activity"].first()
    assert set(first) == {"Arrive"}
    with pytest.raises(EventLogError) as e:
        _ingest(p, qc={"out_of_order": "error"})
    assert e.value.code == "out_of_order"


def test_missing_case_ids_and_single_event_cases(tmp_path):
    p = _log(tmp_path, GOOD + [("", "Arrive", "2024-01-01T10:00:00"), ("P-SECRET-4", "Arrive", "2024-01-01T10:00:00")])
    inst, qc = _ingest(p)
    assert qc["counts"]["missing_case_id"] == 1
    assert qc["counts"]["single_event_cases"] == 1
    assert qc["cases"] == 2
    with pytest.raises(EventLogError, match="missing_case_id"):
        _ingest(p, qc={"missing_case_id": "error"})
    with pytest.raises(EventLogError, match="single_event_case"):
        _ingest(p, qc={"single_event_case": "error"})
    _, qc = _ingest(p, qc={"single_event_case": "keep"})
    assert qc["cases"] == 3


def test_overlapping_stays_of_one_patient(tmp_path):
    rows = [("S1", "Arrive", "2024-01-01T10:00:00", "PAT-A"), ("S1", "Leave", "2024-01-01T14:00:00", "PAT-A"),
            ("S2", "Arrive", "2024-01-01T12:00:00", "PAT-A"), ("S2", "Leave", "2024-01-01T13:00:00", "PAT-A"),
            ("S3", "Arrive", "2024-01-01T15:00:00", "PAT-A"), ("S3", "Leave", "2024-01-01T16:00:00", "PAT-A")]
    p = _log(tmp_path, rows, header=("case:concept:name", "concept:name", "time:timestamp", "patient"))
    inst, qc = _ingest(p, columns={"patient": "patient"})
    assert qc["counts"]["overlapping_stays"] == 1 and qc["cases"] == 2
    with pytest.raises(EventLogError) as e:
        _ingest(p, columns={"patient": "patient"}, qc={"overlapping_stays": "error"})
    assert e.value.code == "overlapping_stays" and "PAT-A" not in str(e.value)


def test_overlapping_activities_are_clipped(tmp_path):
    rows = [("C1", "Triage", "2024-01-01T10:00:00", "start"), ("C1", "Triage", "2024-01-01T10:30:00", "complete"),
            ("C1", "Doctor", "2024-01-01T10:20:00", "start"), ("C1", "Doctor", "2024-01-01T11:00:00", "complete"),
            ("C1", "Bogus", "2024-01-01T11:00:00", "schedule")]
    p = _log(tmp_path, rows, header=("case:concept:name", "concept:name", "time:timestamp", "lifecycle:transition"))
    inst, qc = _ingest(p)
    assert qc["counts"]["overlapping_activities"] == 1
    assert qc["counts"]["other_lifecycle_dropped"] == 1
    doc = inst[inst["activity"] == "Doctor"].iloc[0]
    assert doc["start"] == pd.Timestamp("2024-01-01T10:30:00")
    with pytest.raises(EventLogError, match="overlapping_activities"):
        _ingest(p, qc={"overlapping_activities": "error"})


def test_missing_column_and_bad_site_id(tmp_path):
    p = _log(tmp_path, GOOD)
    with pytest.raises(EventLogError, match="missing_column"):
        _ingest(p, columns={"activity": "Activity"})
    with pytest.raises(InputError, match="site id"):
        resolve_site("../etc", {"log": "x.csv", "validate_from": "2024-01-01"})


def test_xes_log_reads_like_csv(tmp_path):
    xes = tmp_path / "log.xes"
    events = "".join(
        f'<event><string key="concept:name" value="{a}"/><date key="time:timestamp" value="{t}+01:00"/></event>'
        for a, t in (("Arrive", "2024-01-01T10:00:00"), ("Leave", "2024-01-01T12:00:00")))
    xes.write_text(f'<?xml version="1.0"?><log xes.version="1.0"><trace><string key="concept:name" value="CASE-9"/>'
                   f"{events}</trace></log>")
    inst, qc = _ingest(xes)
    assert qc["cases"] == 1 and list(inst["activity"]) == ["Arrive", "Leave"]
    assert inst["end"].iloc[0] == pd.Timestamp("2024-01-01T09:00:00")  # +01:00 converted to UTC
    assert not inst["case"].str.contains("CASE-9").any()


# ------------------------------------------------------------------------ the engine


def _mmc(lam: float, mu: float, c: int) -> dict:
    return {"arrivals": {"period_h": 1, "rate_per_h": [lam]}, "classes": {"names": ["all"], "p": [1.0]},
            "activities": {"serve": {"resource": "server", "service": {"family": "exponential", "mean": 1 / mu}}},
            "routing": {"all": {START: {"serve": 1.0}, "serve": {END: 1.0}}},
            "resources": {"server": {"capacity": c}}, "default_area": "system", "kpi": {}}


@pytest.mark.parametrize("lam,mu,c", [(0.8, 1.0, 1), (2.4, 1.0, 3)])
def test_engine_matches_erlang_c(lam, mu, c):
    """Mean queue wait of M/M/c against the Erlang C formula, 20 replications."""
    a, rho = lam / mu, lam / (mu * c)
    s = sum(a ** k / math.factorial(k) for k in range(c))
    pw = a ** c / math.factorial(c) / (1 - rho) / (s + a ** c / math.factorial(c) / (1 - rho))
    wq = pw / (c * mu - lam)
    model = _mmc(lam, mu, c)
    run = {"horizon_h": 2200.0, "phase_h": 0.0}
    means = []
    for r in range(20):
        tr = simulate(model, run, 7, r)
        keep = tr.v_start > 200.0  # warm-up
        means.append(np.mean((tr.v_start - tr.v_ready)[keep]))
    m, se = np.mean(means), np.std(means, ddof=1) / math.sqrt(len(means))
    assert abs(m - wq) < 4 * se, (m, wq, se)
    assert se / wq < 0.1


def test_thinning_reproduces_a_time_varying_rate():
    model = _mmc(1.0, 10.0, 50)
    model["arrivals"] = {"period_h": 4, "rate_per_h": [2.0, 0.5, 8.0, 1.0], "trend_per_week": 0.0}
    times = np.concatenate([simulate(model, {"horizon_h": 4000.0}, 3, r).arrival for r in range(3)])
    per_phase = np.bincount(np.floor(times).astype(int) % 4, minlength=4) / (3 * 1000)
    assert np.allclose(per_phase, [2.0, 0.5, 8.0, 1.0], rtol=0.05)


def test_censored_fit_and_sampler():
    rng = np.random.default_rng(5)
    x = rng.lognormal(0.0, 0.5, 400)
    cut = 1.5
    d = fit_duration(x[x <= cut], np.full((x > cut).sum(), cut), empirical_min=None)
    assert d["family"] == "lognormal"
    assert abs(d["mean"] - math.exp(0.125)) < 0.06  # truth 1.133; ignoring censoring gives ~0.95
    naive = fit_duration(x[x <= cut], empirical_min=None)
    assert mean_of(naive) < 1.0
    draw = sampler({"family": "empirical", "atoms": [1.0, 2.0, 3.0]}, np.random.default_rng(0))
    assert abs(np.mean([draw() for _ in range(20000)]) - 2.0) < 0.02


def test_nelson_model_runs_and_scenarios_change_what_they_should():
    model = nelson.model()
    base = [replicate(model, 1, r)[0] for r in range(5)]
    more = apply_scenario(model, "exam_plus_1", {"capacity": {"examination_room": 4}})
    plus = [replicate(more, 1, r)[0] for r in range(5)]
    tab = comparison_table({"baseline": base, "exam_plus_1": plus})
    row = tab[(tab["kpi"] == "queue_mean_h:examination") & (tab["scenario"] == "exam_plus_1")].iloc[0]
    assert row["diff_ci95_high"] < 0  # a fourth examination room shortens the examination queue
    same = tab[(tab["kpi"] == "arrivals") & (tab["scenario"] == "exam_plus_1")].iloc[0]
    assert same["diff_vs_baseline"] == 0  # common random numbers: same arrivals
    ft = apply_scenario(model, "ft", {"fast_track": {"classes": ["trauma"], "activities": ["triage"],
                                                      "resource": "ft_bay", "capacity": 1}})
    assert ft["routing"]["trauma"][START] == {"triage (fast track)": 1.0}
    assert ft["routing"]["non_trauma"][START] == {"triage": 1.0}
    ft["kpi"] = {"key_events": {"door_to_cubicle": {"from": "triage", "to": "treatment_trauma"}}, "targets": {}}
    k = replicate(ft, 1, 0)[0]["kpi"]
    assert k["key_events"]["door_to_cubicle"]["n"] == k["activities"]["treatment_trauma"]["n"] > 0
    shifts = apply_scenario(model, "s", {"capacity": {"triage_bay": [{"from_h": 8, "to_h": 20, "n": 2},
                                                                     {"from_h": 20, "to_h": 8, "n": 1}]}})
    assert shifts["resources"]["triage_bay"]["capacity"][7:9] == [1, 2]
    assert replicate(shifts, 1, 0)[0]["kpi"]["arrivals"] > 0


# ---------------------------------------------- determinism, pseudonyms, the artefact


SMALL_SITE = {"end_activities": ["Admission", "Discharge"], "columns": {"class": "case:acuity"},
              "resources": {"lab": None}, "areas": {"ED": ["Registration", "Triage", "Assessment", "Treatment"]},
              "default_area": "ED", "key_events": {"door_to_doctor": {"from": "Registration", "to": "Assessment",
                                                                       "within_h": 1}},
              "targets": {"ed_over_4h": {"area": "ED", "over_h": 4}}, "validate_from": "2024-01-15",
              "warmup_days": 2, "drain_days": 1, "replications": 2, "seed": 11,
              "scenarios": {"extra_doctor": {"capacity": {"doctor": 4}}}}


def _tree(root: Path) -> dict[str, bytes]:
    return {f.relative_to(root).as_posix(): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    log = demo_log.write(d / "small.csv", weeks=3)
    raw = {"log": str(log), **SMALL_SITE}
    env = {"TWINFLOW_HOSPITAL_KEY": "another-secret-key"}
    return [run_site("small", raw, d / f"run{i}", environ=env) for i in (1, 2)], d


def test_same_seed_gives_identical_bytes(small_runs):
    (p1, p2), d = small_runs
    t1, t2 = _tree(d / "run1"), _tree(d / "run2")
    assert t1.keys() == t2.keys() and len(t1) > 20
    assert [k for k in t1 if t1[k] != t2[k]] == []


def test_raw_case_ids_never_reach_outputs(small_runs):
    (p1, _), d = small_runs
    raw_ids = set(pd.read_csv(d / "small.csv")["case:concept:name"])
    for rel, data in _tree(d / "run1").items():
        text = (gzip.decompress(data) if rel.endswith(".gz") else data).decode("utf-8", "replace")
        assert "DEMO-" not in text, rel
    events = pd.read_csv(p1["events"], sep="\t")
    assert not set(events["case"]) & raw_ids
    assert events["case"].str.fullmatch(r"c[0-9a-f]{16}").all()


def test_artefact_verifies_and_catches_tampering(small_runs, tmp_path):
    (p1, _), _ = small_runs
    rep = verify(p1["twin"])
    assert rep.ok, rep.lines()
    assert rep.resimulated == 4 and rep.checked_files >= 14
    doc = json.loads((p1["twin"] / "hospital_twin.json").read_text())
    assert doc["inputs"][0]["sha256"] and doc["seeds"]["seed"] == 11
    assert "another-secret-key" not in json.dumps(doc)
    import shutil

    bad = tmp_path / "twin"
    shutil.copytree(p1["twin"], bad)
    f = bad / "sim" / "baseline" / "rep0.json"
    f.write_text(f.read_text().replace('"rep": 0', '"rep": 0 '))
    assert not verify(bad).ok
    from twinflow.cli import main

    assert main(["hospital", "verify", "--hashes-only", str(p1["twin"])]) == 0
    assert main(["hospital", "verify", "--hashes-only", str(bad)]) == 1


def test_validation_figures_on_the_demo_site(small_runs):
    (p1, _), _ = small_runs
    v = json.loads(p1["validation"].read_text())
    ed = v["census"]["ED"]
    assert 0 < ed["mae_rel"] < 0.8 and 0 < ed["baseline_mae_rel"] < 0.8
    assert ed["daily_band_share"] >= 0.5
    assert v["los"]["ks"] < 0.15
    assert 0.5 < v["arrivals"]["simulated_total_mean"] / v["arrivals"]["observed_total"] < 1.5
    assert v["key_events"]["door_to_doctor"]["observed_share_within"] > 0.5
    assert "report.html" in p1["report"].name and p1["report"].stat().st_size > 10000
