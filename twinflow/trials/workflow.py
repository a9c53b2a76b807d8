"""What the trial rules (``rules/trials.smk``) need, kept out of the rule file so that it is
unit-tested: each configured trial's source twins, chunk jobs, files and code digest."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from twinflow.layout import Layout
from twinflow.trials.sampling import chunk_jobs


@lru_cache(maxsize=None)
def _digest(model: str) -> str:
    from twinflow.models import registry
    from twinflow.trials.artefact import code_digest_of
    from twinflow.trials.config import trial_model

    return code_digest_of(trial_model(model, registry))


class TrialPlan:
    """``trials`` is the checked ``trials:`` section; ``cohort`` a :class:`twinflow.sheets.Cohort`
    (its valid patients of a trial's model are the trial's source twins)."""

    def __init__(self, trials: Mapping[str, Any], cohort: Any, layout: Layout, twins: bool = True):
        self.trials = dict(trials or {})
        self.L = layout
        by_model: dict[str, list[str]] = {}
        for p in cohort.valid_ids:                     # in patient-id order
            by_model.setdefault(cohort.patients[p]["twin_model"], []).append(p)
        #: trial -> its source twins' patient ids (the valid patients of its model)
        self._sources = {n: by_model.get(t["model"], []) for n, t in sorted(self.trials.items())}
        #: trials that can run: twins are built and the cohort has twins of the trial's model
        self._names = [n for n, ids in self._sources.items() if twins and ids]

    def names(self) -> list[str]:
        return list(self._names)

    def skipped(self) -> list[str]:
        return [n for n in self._sources if n not in self._names]

    def config(self, name: str) -> dict[str, Any]:
        return self.trials[name]

    def sources(self, name: str) -> dict[str, list[str]]:
        """The inputs every job of a trial reads: its source twins and their sheets."""
        ids = self._sources[name]
        return {"twins": [self.L.twin_json(p) for p in ids], "sheets": [self.L.sheet(p) for p in ids]}

    def chunk_files(self, name: str) -> list[str]:
        return [self.L.trial_chunk(name, arm, k) for arm, k in chunk_jobs(self.trials[name])]

    def code(self, name: str) -> str:
        return _digest(self.trials[name]["model"])

    def targets(self) -> list[str]:
        return [f for n in self.names() for f in (self.L.trial(n, "trial/trial.json"), self.L.trial(n, "report.html"))]

    def reports(self) -> dict[str, str]:
        return {n: self.L.trial(n, "report.html") for n in self.names()}
