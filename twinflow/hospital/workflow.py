"""The hospital twin's steps as functions of files, for rules/hospital.smk and for
:func:`run_site` (the same chain in one process: tests, ``twinflow hospital run``).

Every step reads its inputs, writes its outputs atomically and is a pure function of its
inputs, the site's configuration and (for replications) the seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from twinflow.errors import InputError
from twinflow.hospital import config as hconfig
from twinflow.io.atomic import write_bytes, write_json, write_tsv

log = logging.getLogger("twinflow.hospital")
PACKAGE_DIR = Path(__file__).resolve().parent


# ------------------------------------------------------------------- Snakemake helpers


def sites(config: dict) -> dict[str, dict]:
    """Resolved site entries of ``config['hospital']``, checked against
    ``twinflow/hospital/config.schema.yaml`` (unknown keys refused with the nearest name);
    raises InputError on a bad entry."""
    import yaml

    from twinflow.config import check_section

    section = config.get("hospital") or {}
    with open(Path(__file__).with_name("config.schema.yaml"), encoding="utf-8") as fh:
        check_section(section, "hospital", yaml.safe_load(fh))
    return {s: hconfig.resolve_site(s, raw or {}) for s, raw in sorted(section.items())}


def results_dir(config: dict) -> str:
    return f"{str(config.get('results', 'results')).rstrip('/')}/hospital"


scenario_names = hconfig.scenario_names

#: the keys of a site entry each stage reads (its rule's param): editing a scenario re-runs
#: the simulations, not ingest or the fit
STAGE_KEYS = {
    "ingest": ("site", "log", "format", "csv", "timezone", "columns", "pseudonym_key_env", "qc", "end_activities"),
    "fit": ("site", "areas", "default_area", "activity_resources", "resources", "class_priority", "key_events",
            "targets", "arrival_model", "trend", "min_observations", "validate_from", "validate_until",
            "warmup_days", "drain_days"),
}


def stage_config(cfg: dict, stage: str) -> dict:
    """The part of a resolved site entry that ``stage`` depends on."""
    return {k: cfg[k] for k in STAGE_KEYS[stage]}


def rep_names(cfg: dict) -> list[int]:
    return list(range(int(cfg["replications"])))


def replications(results: str, site: str, cfg: dict, ext: str, scenarios: list[str] | None = None) -> list[str]:
    """The replication files (``json`` or ``cases.tsv.gz``) of a site's scenarios (None: all)."""
    names = scenarios or scenario_names(cfg)
    return [f"{results}/{site}/sim/{s}/rep{r}.{ext}" for s in names for r in rep_names(cfg)]


def targets(config: dict) -> list[str]:
    """The final outputs of every site: report, artefact and comparison table."""
    r = results_dir(config)
    out = []
    for s in sites(config):
        out += [f"{r}/{s}/report.html", f"{r}/{s}/twin/hospital_twin.json", f"{r}/{s}/scenarios.tsv"]
    return out


def demo_logs(config: dict) -> list[str]:
    return [c["log"] for c in sites(config).values() if c["demo"]]


def code_digest() -> str:
    """SHA-256 (16 hex) of the hospital package and the demo log generator: a rule param,
    so that a code change re-runs the hospital jobs."""
    h = hashlib.sha256()
    files = sorted(PACKAGE_DIR.glob("*.py")) + [PACKAGE_DIR.parent / "demo" / "eventlog.py"]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def run_script(snakemake: Any, main: Callable[[Any], Any]) -> None:
    """Run ``main(snakemake)`` with logging to the rule's log; bad input exits with one line."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if len(snakemake.log):
        handlers.append(logging.FileHandler(snakemake.log[0], mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)
    try:
        main(snakemake)
    except InputError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None


# ----------------------------------------------------------------------------- the steps


def step_demo_log(out: str | Path) -> None:
    from twinflow.demo import eventlog

    eventlog.write(out)


def step_ingest(cfg: dict, raw: dict, log_file: str | Path, events_out: str | Path, qc_out: str | Path,
                environ: dict | None = None) -> None:
    from twinflow.hospital.eventlog import ingest, write_events

    key = hconfig.pseudonym_key(cfg["site"], raw, environ)
    inst, qc = ingest(cfg, log_file, key)
    write_events(events_out, inst)
    write_json(qc_out, qc)
    log.info("site %s: %d cases, %d activity instances", cfg["site"], qc["cases"], qc["activity_instances"])


def step_fit(cfg: dict, events: str | Path, model_out: str | Path, fit_out: str | Path) -> None:
    from twinflow.hospital.eventlog import read_events
    from twinflow.hospital.fit import fit_site

    model, summary = fit_site(read_events(events), cfg)
    write_json(model_out, model, ndigits=12)
    write_json(fit_out, summary)


def step_simulate(model_file: str | Path, scenario: str, spec: dict, seed: int, rep: int,
                  json_out: str | Path, cases_out: str | Path) -> None:
    from twinflow.hospital.artefact import replication_files

    model = json.loads(Path(model_file).read_text())
    files = replication_files(model, scenario, spec, seed, rep)
    write_bytes(json_out, files[f"rep{rep}.json"])
    write_bytes(cases_out, files[f"rep{rep}.cases.tsv.gz"])


def _reps(paths: list[str | Path]) -> list[dict]:
    return [json.loads(Path(p).read_text()) for p in paths]


def step_validate(events: str | Path, model_file: str | Path, rep_json: list, rep_cases: list,
                  out_json: str | Path, out_tsv: str | Path) -> None:
    from twinflow.hospital.eventlog import read_events
    from twinflow.hospital.validate import validate

    model = json.loads(Path(model_file).read_text())
    cases = [pd.read_csv(p, sep="\t") for p in rep_cases]
    figures, hourly = validate(read_events(events), model, _reps(rep_json), cases)
    write_json(out_json, figures)
    write_tsv(out_tsv, hourly)


def step_scenarios(rep_json: list, out_tsv: str | Path) -> None:
    from twinflow.hospital.scenarios import comparison_table

    by: dict[str, list[dict]] = {}
    for r in _reps(rep_json):
        by.setdefault(r["scenario"], []).append(r)
    order = ["baseline"] + sorted(s for s in by if s != "baseline")
    write_tsv(out_tsv, comparison_table({s: by[s] for s in order if s in by}))


def step_twin(cfg: dict, log_file: str | Path, files: dict[str, str | Path], rep_files: list, out_dir: str | Path) -> None:
    from twinflow.hospital.artefact import build

    by: dict[str, list[Path]] = {}
    for p in map(Path, rep_files):
        by.setdefault(p.parent.name, []).append(p)
    build(out_dir, site_cfg=cfg, log_display=str(cfg["log"]), log_file=log_file,
          files={k: Path(v) for k, v in files.items()}, replications=by)


def step_report(site: str, qc: str | Path, fit: str | Path, validation: str | Path, hourly: str | Path,
                scenarios: str | Path, baseline_reps: list, out: str | Path) -> None:
    from twinflow.hospital.report import write_report

    write_report(out, site=site, qc=json.loads(Path(qc).read_text()), fit=json.loads(Path(fit).read_text()),
                 validation=json.loads(Path(validation).read_text()), hourly=pd.read_csv(hourly, sep="\t"),
                 scenarios=pd.read_csv(scenarios, sep="\t"), baseline_reps=_reps(baseline_reps))


# ----------------------------------------------------------------- the chain in one go


def site_paths(root: str | Path, cfg: dict) -> dict[str, Any]:
    """The files of one site under ``root`` (= ``<results>/hospital/<site>``), as the rules name them."""
    root = Path(root)
    sims = {(sc, r): (root / "sim" / sc / f"rep{r}.json", root / "sim" / sc / f"rep{r}.cases.tsv.gz")
            for sc in hconfig.scenario_names(cfg) for r in rep_names(cfg)}
    return {"events": root / "events.tsv.gz", "qc": root / "qc.json", "model": root / "model.json",
            "fit": root / "fit.json", "sims": sims, "validation": root / "validation.json",
            "hourly": root / "validation_hourly.tsv", "scenarios": root / "scenarios.tsv",
            "twin": root / "twin", "report": root / "report.html"}


def run_site(site: str, raw: dict, root: str | Path, workdir: str | Path = ".", environ: dict | None = None) -> dict:
    """Every step of one site in this process (what the rules do, one job after another)."""
    cfg = hconfig.resolve_site(site, raw)
    p = site_paths(root, cfg)
    log_file = hconfig.log_path(cfg, workdir)
    if cfg["demo"] and not log_file.exists():
        step_demo_log(log_file)
    step_ingest(cfg, raw, log_file, p["events"], p["qc"], environ)
    step_fit(cfg, p["events"], p["model"], p["fit"])
    for (sc, r), (j, c) in sorted(p["sims"].items()):
        step_simulate(p["model"], sc, cfg["scenarios"].get(sc, {}), int(cfg["seed"]), r, j, c)
    base = [p["sims"][("baseline", r)] for r in rep_names(cfg)]
    step_validate(p["events"], p["model"], [b[0] for b in base], [b[1] for b in base], p["validation"], p["hourly"])
    step_scenarios([v[0] for v in p["sims"].values()], p["scenarios"])
    step_twin(cfg, log_file, twin_files(p), [f for v in p["sims"].values() for f in v], p["twin"])
    step_report(site, p["qc"], p["fit"], p["validation"], p["hourly"], p["scenarios"], [b[0] for b in base],
                p["report"])
    return p


def twin_files(p: dict) -> dict[str, Path]:
    return {"model.json": p["model"], "fit.json": p["fit"], "qc.json": p["qc"], "validation.json": p["validation"],
            "validation_hourly.tsv": p["hourly"], "scenarios.tsv": p["scenarios"]}

