"""``twinflow verify`` of a trial artefact: hashes, sources, the population draw, a
re-simulation of some of its patients and the analysis, each from the artefact and the
source twins it names.

1. ``trial.json`` is readable, every file of the manifest is present with its SHA-256 and
   nothing else is in the folder;
2. every source twin's ``twin.json`` is where the artefact says (relative to it, or under
   ``twins_root/<patient>/twin``) with the recorded SHA-256;
3. the population is drawn again from the recorded configuration and sources: every value of
   ``population.parquet`` must come back;
4. ``patients`` virtual patients per arm (spread over each arm; all with ``patients=None``) are
   simulated again: their endpoints must equal the stored ones exactly;
5. the analysis and the CONSORT counts are recomputed from the stored tables and must equal
   those in ``trial.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twinflow.io.atomic import dumps_json
from twinflow.trials.artefact import ENTRY
from twinflow.twin.artefact import sha256_file
from twinflow.twin.verify import VerifyReport, check_manifest, load_entry


@dataclass
class TrialVerifyReport(VerifyReport):
    """``twin_dir`` is the trial folder; ``resimulated`` counts re-simulated patients."""

    resampled: int = 0
    recomputed: bool = False          # the population, patients and analysis were checked too

    def lines(self) -> list[str]:
        if not self.ok:
            return super().lines()
        head = f"{self.twin_dir}: OK: {self.checked_files} file hashes match"
        if self.recomputed:
            head += (f", population of {self.resampled} re-drawn, {self.resimulated} patient(s) re-simulated "
                     "identically, analysis re-computed identically")
        return [head]


def _sources(trial_dir: Path, doc: dict, twins_root: Path | None, rep: TrialVerifyReport) -> list:
    from twinflow.trials.stages import load_sources

    paths = []
    for s in doc["sources"]:
        d = (twins_root / s["patient_id"] / "twin") if twins_root else (trial_dir / s["twin"])
        tj = d / "twin.json"
        if not tj.is_file():
            rep.problems.append(f"source twin {s['patient_id']}: {tj} missing")
        elif sha256_file(tj) != s["twin_json_sha256"]:
            rep.problems.append(f"source twin {s['patient_id']}: twin.json differs from the one the trial used")
        else:
            paths.append(tj)
    if rep.problems:
        return []
    sources = load_sources(paths)
    rows = {s["patient_id"]: s.get("row") or {} for s in doc["sources"]}
    for s in sources:
        s.row = dict(rows[s.patient_id])
    return sources


def verify_trial(trial_dir: str | Path, *, resimulate: bool = True, patients: int | None = 2,
                 twins_root: str | Path | None = None, tm=None) -> TrialVerifyReport:
    """``resimulate=False``: hashes only; ``patients``: virtual patients per arm simulated
    again (None: all)."""
    from twinflow.trials.analysis import analyse, flow
    from twinflow.trials.sampling import population_table
    from twinflow.trials.simulate import simulate_chunk
    from twinflow.trials.stages import model_of
    from twinflow.trials.tables import read_parquet, same_table

    trial_dir = Path(trial_dir)
    rep = TrialVerifyReport(str(trial_dir))
    doc = load_entry(trial_dir, ENTRY, rep)
    if doc is None:
        return rep
    check_manifest(trial_dir, doc.get("manifest", {}), ENTRY, rep)
    if not resimulate or rep.problems:
        return rep
    cfg = doc["config"]["resolved"]
    tm = tm or model_of(cfg)
    population = read_parquet(trial_dir / "population.parquet")
    table = read_parquet(trial_dir / "patients.parquet")
    sources = _sources(trial_dir, doc, Path(twins_root) if twins_root else None, rep)
    if rep.problems:
        return rep
    rows = {s.patient_id: s for s in sources}
    again = population_table(tm, sources, cfg)
    diff = same_table(again, population)
    if diff:
        rep.problems.append(f"population.parquet: the population drawn again differs ({diff})")
        return rep
    rep.resampled = len(population)
    arms = [a["name"] for a in cfg["arms"]]
    for arm in arms:
        stored = table[table["arm"] == arm].sort_values("vp_id")
        ids = list(stored["vp_id"])
        if patients is not None and len(ids) > patients:
            ids = [ids[i] for i in np.linspace(0, len(ids) - 1, patients).round().astype(int)] if patients else []
        if not ids:
            continue
        pop = population[population["vp_id"].isin(ids)].copy()
        pop["chunk"] = 0
        redone = simulate_chunk(tm, pop, cfg, arm, 0, rows).sort_values("vp_id").reset_index(drop=True)
        mine = stored[stored["vp_id"].isin(ids)][list(redone.columns)].reset_index(drop=True)
        diff = same_table(redone, mine)
        if diff:
            rep.problems.append(f"patients.parquet: re-simulation of arm {arm} differs ({diff})")
        else:
            rep.resimulated += len(ids)
    if dumps_json(flow(population, table, arms)) != dumps_json(doc["flow"]):
        rep.problems.append("trial.json: the CONSORT counts recomputed from the tables differ")
    if dumps_json(analyse(table, cfg, tm.endpoints)) != dumps_json(doc["analysis"]):
        rep.problems.append("trial.json: the analysis recomputed from patients.parquet differs")
    rep.recomputed = True
    return rep
