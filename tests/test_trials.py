"""The trial engine (twinflow.trials) with an analytic trial model: configuration checks,
screening and randomisation, chunks, the artefact, verify and the report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trial_toys import AnalyticTrial, Registry, trial_config  # noqa: E402
from twinflow.config import ConfigError  # noqa: E402
from twinflow.trials.config import check_trials  # noqa: E402
from twinflow.trials.runner import run_trial  # noqa: E402
from twinflow.trials.sampling import failed_criterion, population_table  # noqa: E402
from twinflow.trials.verify import verify_trial  # noqa: E402


def test_config_defaults_and_problems():
    cfg = trial_config(20)
    assert cfg["randomisation"]["ratio"] == [1, 1] and cfg["randomisation"]["block_size"] == 4
    assert cfg["analysis"]["reference_arm"] == "control" and cfg["simulation"]["hr"] == 1.0
    bad = {"model": "analytic", "arms": [{"name": "a"}, {"name": "a", "regimen": {"treatd": True}}], "n_per_arm": 5,
           "endpoints": ["tte", "os"], "randomisation": {"strata": ["grop"], "ratio": [2, 1], "block_size": 4},
           "eligibility": [{"field": "age", "min": 18}], "analysis": {"reference_arm": "b"}, "n_per_arms": 3}
    with pytest.raises(ConfigError) as e:
        check_trials({"x": bad}, Registry)
    msg = str(e.value)
    for part in ("trials.x.n_per_arms: unknown key; did you mean 'n_per_arm'?",
                 "trials.x.arms.1.regimen.treatd: unknown key; did you mean 'treated'?",
                 "arm names must be unique", "unknown endpoint 'os'", "unknown covariate 'grop'; did you mean 'group'?",
                 "eligibility.0.field: unknown covariate 'age'", "block_size: 4 is not a multiple of the ratio's sum 3",
                 "reference_arm: unknown arm 'b'"):
        assert part in msg, (part, msg)
    with pytest.raises(ConfigError, match="unknown twin model 'analytc'; did you mean 'analytic'"):
        check_trials({"x": dict(bad, model="analytc")}, Registry)


def test_eligibility_criteria():
    crit = [{"field": "age_years", "min": 18, "max": 70}, {"field": "group", "in": ["A"]}]
    assert failed_criterion({"age_years": 40, "group": "A"}, crit) == ""
    assert failed_criterion({"age_years": 71, "group": "A"}, crit) == "age_years > 70"
    assert failed_criterion({"age_years": None, "group": "A"}, crit) == "age_years missing"
    assert failed_criterion({"age_years": 30, "group": "B"}, crit) == "group not in A"


def test_screening_randomisation_and_chunks():
    tm = AnalyticTrial()
    cfg = trial_config(60, eligibility=[{"field": "age_years", "max": 70}], chunk_size=25,
                       randomisation={"strata": ["group"], "ratio": [2, 1], "block_size": 6, "seed": 3})
    pop = population_table(tm, [], cfg)
    rand = pop[pop["randomised"]]
    # screening stops at the last patient needed: 180 eligible, the last screened enrolled
    assert len(rand) == 180 and bool(pop.iloc[-1]["randomised"])
    ages = pop["cov.age_years"]
    assert (pop["eligible"] == (ages <= 70)).all()
    assert pop.loc[~pop["eligible"], "excluded_by"].eq("age_years > 70").all()
    # uniform ages 20-90: 5/7 eligible -- the screened count is binomial around 180 * 7/5
    assert abs(len(pop) - 252) < 4 * np.sqrt(252 * 2 / 7)
    # permuted blocks of 6 within 2 strata: each arm within half a block per stratum of 2:1
    counts = rand["arm"].value_counts()
    assert abs(counts["control"] - 120) <= 4 and counts.sum() == 180
    for _, g in rand.groupby("stratum"):
        c = g["arm"].value_counts().reindex(["control", "treated"], fill_value=0)
        assert abs(c["control"] - 2 * c["treated"]) <= 3
    # chunks: ceil(120/25) = 5 for control and ceil(60/25) = 3 for treated, contiguous, covering each arm once
    for arm, k in (("control", 5), ("treated", 3)):
        g = rand[rand["arm"] == arm].sort_values("arm_rank")
        assert sorted(g["chunk"].unique()) == list(range(k))
        assert (np.diff(g["chunk"].to_numpy()) >= 0).all()
    # reproducible; another seed gives another draw
    again = population_table(tm, [], cfg)
    pd.testing.assert_frame_equal(pop, again)
    cfg2 = dict(cfg, seed=cfg["seed"] + 1)
    assert not pop["cov.age_years"].head(20).equals(population_table(tm, [], cfg2)["cov.age_years"].head(20))


def test_too_few_eligible_is_one_clear_message():
    from twinflow.errors import InputError

    cfg = trial_config(50, eligibility=[{"field": "age_years", "min": 89.6}], max_screened=500)
    with pytest.raises(InputError, match="eligible; the trial needs 100"):
        population_table(AnalyticTrial(), [], cfg)


def _run(tmp_path: Path, name: str = "t", **over):
    cfg = trial_config(40, randomisation={"strata": ["group"]}, analysis={"subgroups": ["group"],
                       "power": {"sizes": [10, 40], "replicates": 50}},
                       simulation={"hr": 0.5, "delta": 1.0, "odds_ratio": 3.0}, **over)
    return cfg, run_trial(name, cfg, [], tmp_path, tm=AnalyticTrial())


def test_artefact_is_deterministic_verifiable_and_reported(tmp_path):
    cfg, out = _run(tmp_path / "a")
    _run(tmp_path / "b")
    da, db = tmp_path / "a/trials/t/trial", tmp_path / "b/trials/t/trial"
    assert (da / "trial.json").read_bytes() == (db / "trial.json").read_bytes()
    for rel in json.loads((da / "trial.json").read_text())["manifest"]:
        assert (da / rel).read_bytes() == (db / rel).read_bytes(), rel
    doc = out["doc"]
    assert doc["flow"]["randomised"] == {"control": 40, "treated": 40}
    assert doc["flow"]["analysed"] == {"control": 40, "treated": 40}
    an = doc["analysis"]
    hr = an["endpoints"]["tte"]["comparisons"][0]
    assert hr["estimate"] < 1 and hr["ci_low"] < 0.5 < hr["ci_high"]          # built-in HR 0.5
    md = an["endpoints"]["y"]["comparisons"][0]
    assert md["ci_low"] < 1.0 < md["ci_high"] and md["p"] < 1e-3             # built-in shift 1 sd
    assert {s["level"] for s in an["subgroups"]} == {"A", "B"}
    assert [r["n_per_arm"] for r in an["power"]["comparisons"][0]["curve"]] == [10, 40]
    patients = pd.read_parquet(da / "patients.parquet")
    assert {"vp_id", "arm", "status", "tte.time_days", "tte.event", "y", "response", "cov.group"} <= set(patients.columns)
    rep = verify_trial(da, patients=None, tm=AnalyticTrial())
    assert rep.ok, rep.lines()
    assert rep.resimulated_files == 80 and rep.resampled == doc["flow"]["screened"]
    html = (tmp_path / "a/trials/t/report.html").read_text()
    for part in ("Flow", "Kaplan-Meier", "Subgroups", "Power", "hazard ratio", "twinflow verify"):
        assert part in html, part
    assert str(tmp_path) not in html                                             # no absolute paths


def test_verify_finds_tampering(tmp_path):
    _run(tmp_path)
    d = tmp_path / "trials/t/trial"
    pq = d / "patients.parquet"
    df = pd.read_parquet(pq)
    df.loc[0, "y"] += 1.0
    pq.chmod(0o644)
    df.to_parquet(pq, index=False)
    rep = verify_trial(d, tm=AnalyticTrial())
    assert not rep.ok and "patients.parquet: SHA-256 differs from the manifest" in rep.problems
    # an analysis edited in trial.json (the manifest does not cover it) is found by recomputing
    _run(tmp_path)
    doc = json.loads((d / "trial.json").read_text())
    doc["analysis"]["endpoints"]["y"]["comparisons"][0]["estimate"] = 0.0
    (d / "trial.json").write_text(json.dumps(doc))
    rep = verify_trial(d, tm=AnalyticTrial())
    assert rep.problems == ["trial.json: the analysis recomputed from patients.parquet differs"]
    # a changed seed no longer gives the stored population
    _run(tmp_path)
    doc = json.loads((d / "trial.json").read_text())
    doc["config"]["resolved"]["seed"] += 1
    (d / "trial.json").write_text(json.dumps(doc))
    rep = verify_trial(d, tm=AnalyticTrial())
    assert len(rep.problems) == 1 and rep.problems[0].startswith("population.parquet: the population drawn again differs")


class FailingTrial(AnalyticTrial):
    def simulate_virtual(self, patient, arm, options, sources):
        if patient["covariates"]["age_years"] > 85:
            raise ArithmeticError("solver diverged")
        return super().simulate_virtual(patient, arm, options, sources)


def test_failed_simulations_are_counted_not_analysed(tmp_path):
    cfg = trial_config(30)
    out = run_trial("f", cfg, [], tmp_path, tm=FailingTrial(), report=False)
    pts = pd.read_parquet(tmp_path / "trials/f/trial/patients.parquet")
    failed = pts["status"].str.startswith("failed: solver diverged")
    assert failed.any()
    fl = out["doc"]["flow"]
    assert sum(fl["not_analysed"].values()) == int(failed.sum())
    assert sum(fl["analysed"].values()) == 60 - int(failed.sum())
    assert out["doc"]["analysis"]["endpoints"]["y"]["arms"]["control"]["n"] == fl["analysed"]["control"]


def test_config_is_what_the_artefact_records():
    """A float default (e.g. a range given as exp(+-1.96) x 0.001) is rounded as trial.json
    writes it, so that verify draws the population from exactly the configuration that ran."""
    import json as _json

    from twinflow.io.atomic import dumps_json

    cfg = trial_config(10, simulation={"delta": 1 / 3})
    assert cfg == _json.loads(dumps_json(cfg))
    assert cfg["simulation"]["delta"] == 0.3333333333
