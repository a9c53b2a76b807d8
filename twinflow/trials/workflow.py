"""What the trial rules (``rules/trials.smk``) need, kept out of the rule file so that it is
unit-tested: each configured trial's source twins, chunk jobs, files and code digest."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from twinflow.layout import Layout
from twinflow.trials.sampling import n_chunks


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
        self.cohort = cohort
        self.L = layout
        self.twins = twins

    def names(self) -> list[str]:
        """Trials that can run: twins are built and the cohort has twins of the trial's model."""
        return [n for n in sorted(self.trials) if self.twins and self.source_ids(n)]

    def skipped(self) -> list[str]:
        return [n for n in sorted(self.trials) if n not in self.names()]

    def config(self, name: str) -> dict[str, Any]:
        return self.trials[name]

    def source_ids(self, name: str) -> list[str]:
        model = self.trials[name]["model"]
        return sorted(p for p in self.cohort.valid_ids if self.cohort.patients[p]["twin_model"] == model)

    def twin_jsons(self, name: str) -> list[str]:
        return [self.L.twin_json(p) for p in self.source_ids(name)]

    def sheet_jsons(self, name: str) -> list[str]:
        return [self.L.sheet(p) for p in self.source_ids(name)]

    def sources(self, name: str) -> dict[str, list[str]]:
        """The inputs every job of a trial reads: its source twins and their sheets."""
        return {"twins": self.twin_jsons(name), "sheets": self.sheet_jsons(name)}

    def chunks(self, name: str) -> list[tuple[str, int]]:
        return [(arm, k) for arm, n in n_chunks(self.trials[name]).items() for k in range(n)]

    def chunk_files(self, name: str) -> list[str]:
        return [self.L.trial(name, f"chunks/{arm}/{k}.parquet") for arm, k in self.chunks(name)]

    def code(self, name: str) -> str:
        return _digest(self.trials[name]["model"])

    def targets(self) -> list[str]:
        return [f for n in self.names() for f in (self.L.trial(n, "trial/trial.json"), self.L.trial(n, "report.html"))]

    def reports(self) -> dict[str, str]:
        return {n: self.L.trial(n, "report.html") for n in self.names()}
