"""The stages of a trial, each a pure function of its inputs, called by the Snakemake scripts
(``rules/trials.smk``) and by :func:`twinflow.trials.runner.run_trial` alike:

1. :func:`sample`           source twins -> ``population.parquet`` (screened, eligible,
                            randomised, chunk of every candidate) and ``sample.json``
2. :func:`simulate`         one chunk of one arm -> ``chunks/<arm>/<k>.parquet``
3. :func:`assemble`         population + chunks -> the trial artefact ``trial/`` (per-patient
                            results, analysis, figures, ``trial.json``) and ``report.html``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from twinflow.io.atomic import write_json
from twinflow.models.base import SourceTwin
from twinflow.trials.tables import read_parquet, write_parquet

#: patients.tsv text columns a trial may read; other columns only when they are numbers (a
#: text column could hold paths or identifying data, which must not reach a trial artefact)
TEXT_COLUMNS = ("patient_id", "twin_model", "sex")


def _sheet_columns(row: dict) -> dict:
    return {k: v for k, v in row.items()
            if k in TEXT_COLUMNS or (isinstance(v, (int, float)) and not isinstance(v, bool))}


def model_of(cfg: Mapping[str, Any]):
    from twinflow.models import registry
    from twinflow.trials.config import trial_model

    return trial_model(cfg["model"], registry)


def load_sources(twin_jsons: Sequence[str | Path], sheet_jsons: Sequence[str | Path] = ()) -> list[SourceTwin]:
    """The source twins (sorted by patient id) from their ``twin.json`` files and, where given,
    their ``sheet.json`` (the patients.tsv row: its numbers and ``TEXT_COLUMNS``)."""
    rows = {}
    for s in sheet_jsons:
        rec = json.loads(Path(s).read_text(encoding="utf-8"))
        rows[rec["patient_id"]] = _sheet_columns(rec["row"])
    out = []
    for t in twin_jsons:
        doc = json.loads(Path(t).read_text(encoding="utf-8"))
        pid = doc["patient_id"]
        out.append(SourceTwin(patient_id=pid, twin_dir=Path(t).parent, doc=doc, row=rows.get(pid, {})))
    return sorted(out, key=lambda s: s.patient_id)


def sample(cfg: Mapping[str, Any], sources: list[SourceTwin], out_parquet: str | Path,
           out_json: str | Path | None = None, tm: Any = None):
    """Screen, check eligibility, randomise and cut into chunks; returns the population table."""
    from twinflow.trials.sampling import arm_targets, population_table

    tm = tm or model_of(cfg)
    df = population_table(tm, sources, cfg)
    write_parquet(out_parquet, df)
    if out_json:
        write_json(out_json, {"screened": int(len(df)), "eligible": int(df["eligible"].sum()),
                              "randomised": {a: int((df["arm"] == a).sum()) for a in arm_targets(cfg)},
                              "sources": [s.patient_id for s in sources]})
    return df


def simulate(cfg: Mapping[str, Any], population_parquet: str | Path, sources: list[SourceTwin], arm: str,
             chunk: int, out_parquet: str | Path, tm: Any = None):
    from twinflow.trials.simulate import simulate_chunk

    tm = tm or model_of(cfg)
    df = simulate_chunk(tm, read_parquet(population_parquet), cfg, arm, int(chunk),
                        {s.patient_id: s for s in sources})
    write_parquet(out_parquet, df)
    return df


def assemble(name: str, cfg: Mapping[str, Any], population_parquet: str | Path, chunk_parquets: Sequence[str | Path],
             sources: list[SourceTwin], trial_dir: str | Path, report_html: str | Path | None = None,
             tm: Any = None) -> dict:
    """Gather the chunks, analyse, and write the trial artefact (and its report)."""
    from twinflow.trials.artefact import build_trial
    from twinflow.trials.simulate import gather

    tm = tm or model_of(cfg)
    population = read_parquet(population_parquet)
    patients = gather(population, [read_parquet(p) for p in chunk_parquets])
    doc = build_trial(name, cfg, tm, sources, population, patients, trial_dir)
    if report_html:
        from twinflow.trials.report import trial_report

        trial_report(report_html, trial_dir)
    return doc
