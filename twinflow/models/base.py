"""The seam between the generic workflow and a kind of twin.

A kind of twin (oncology, cardiac, ...) is a subclass of :class:`TwinModel` registered in the
``twinflow.models`` entry-point group (see :mod:`twinflow.models.registry`); the built-in
ones are registered in ``pyproject.toml`` like any other, so a lab can ship its own model as a
separate pip package.  The generic code (rules, sheets, artefact, verify, report, cohort
summary, schemas) asks a model only what is declared here and never names one.

Stages, each a Snakemake job (``rules/``):

* ``segment``   per visit in :meth:`TwinModel.segment_visits`: images -> ``segment/<visit>/``
* ``estimate``  calibration -> ``estimate/``
* ``simulate``  treatment arms and forecasts -> ``simulate/``
* ``twin``      :meth:`TwinModel.build_twin` adds its maps, inputs, results and plots to the
                artefact and returns its part of ``twin.json``
* ``report``    :meth:`TwinModel.report_sections` for the patient report, :meth:`TwinModel.summary`
                for the cohort tables

A model receives a :class:`PatientContext`: the patient's sheet rows (from
``<results>/<patient>/sheet.json``), its config section for the stage and the results layout
(:class:`twinflow.layout.Layout`), from which it finds the files of earlier stages.
``resimulate`` must re-create the files listed in a twin's ``simulations`` byte for byte from
the twin folder alone (``twinflow verify``).

In-silico trials (:mod:`twinflow.trials`) are optional: a model that supports them returns a
:class:`TrialModel` from :meth:`TwinModel.trial` -- how virtual patients are drawn from the
cohort's calibrated twins (:class:`SourceTwin`), the regimens its arms accept, the endpoints it
reports and the simulation of one virtual patient on one arm.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

from twinflow.layout import Layout

STAGES = ("segment", "estimate", "simulate", "twin", "report")


def schema_beside(module_file: str, name: str) -> dict[str, Any]:
    """A JSON schema written as YAML (or JSON) in the folder of ``module_file``: how a model
    module loads its ``config_schema`` and ``results_schema`` (ship the file as package data)."""
    import yaml

    with open(Path(module_file).with_name(name), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@dataclass
class PatientContext:
    """What a model's stage knows of its patient."""

    patient_id: str
    row: dict[str, Any]                    # patients.tsv row (paths resolved, plus <column>_display)
    images: list[Any]                      # twinflow.sheets.ImageRow, sorted by (date, visit, series)
    treatments: list[dict[str, Any]]       # treatments.tsv rows, sorted by date
    layout: Layout
    config: dict[str, Any] = field(default_factory=dict)        # models.<name>.<stage> of the config
    sheets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # the model's own sheets' rows
    problem: str | None = None             # why the patient's rows cannot be used (then no stage runs)

    @classmethod
    def from_record(cls, record: Mapping[str, Any], layout: Layout, config: Mapping[str, Any] | None = None
                    ) -> "PatientContext":
        """Context from a patient record (:meth:`twinflow.sheets.Cohort.record`, i.e. sheet.json)."""
        from twinflow.sheets import ImageRow

        return cls(patient_id=record["patient_id"], row=dict(record["row"]),
                   images=[ImageRow(**r) for r in record["images"]],
                   treatments=[dict(t) for t in record["treatments"]], layout=layout,
                   config=dict(config or {}), sheets={k: list(v) for k, v in (record.get("sheets") or {}).items()},
                   problem=record.get("problem"))

    # ------------------------------------------------------------------ sheet rows
    def visits(self) -> list[tuple[str, str]]:
        """(visit, date) pairs in date order."""
        seen: dict[str, str] = {}
        for r in self.images:
            seen.setdefault(r.visit, r.date)
        return sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))

    def series_of(self, visit: str) -> dict[str, Any]:
        return {r.series: r for r in self.images if r.visit == visit}

    # ------------------------------------------------------------------ files of earlier stages
    @property
    def results(self) -> Path:
        return Path(self.layout.patient(self.patient_id))

    @property
    def ingest(self) -> Path:
        return Path(self.layout.ingest_qc(self.patient_id)).parent

    def image_path(self, visit: str, series: str) -> Path:
        return Path(self.layout.image(self.patient_id, visit, series))

    def label_path(self, visit: str, series: str) -> Path:
        return Path(self.layout.image(self.patient_id, visit, series, ".label.nii.gz"))

    def segment_dir(self, visit: str) -> Path:
        return Path(self.layout.segment(self.patient_id, visit))

    @property
    def labs_table(self) -> Path:
        return Path(self.layout.labs(self.patient_id))

    @property
    def pgx_record(self) -> Path:
        return Path(self.layout.pgx(self.patient_id))


@dataclass
class ReportSection:
    """One section of the patient report, rendered by :mod:`twinflow.report.html`.

    Any of ``table`` (rows of a table, ``columns`` in order), ``items`` (a key-value table),
    ``notes`` (bullet points) and ``figures`` ((png path, caption) pairs) may be given; a
    section with none of them is left out of the report."""

    title: str
    table: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] | None = None
    items: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.table or self.items or self.notes or self.figures)


@dataclass
class SourceTwin:
    """A calibrated twin of the cohort as a trial's population sees it: its folder, its
    ``twin.json`` and its ``patients.tsv`` row (the sheet columns eligibility may name)."""

    patient_id: str
    twin_dir: Path
    doc: dict[str, Any]
    row: dict[str, Any] = field(default_factory=dict)


class TrialModel(ABC):
    """What a kind of twin contributes to in-silico trials (:mod:`twinflow.trials`).

    A virtual patient is a dict ``{"source": patient_id or None, "covariates": {...},
    "params": {...}}`` of scalars (numbers, strings, booleans): ``covariates`` are what
    eligibility criteria, strata and subgroups may name (sheet columns and twin features);
    ``params`` is everything :meth:`simulate_virtual` needs besides the source twin's folder.
    Any randomness of a virtual patient is drawn in :meth:`population` (and stored in
    ``params``), so that simulating is a pure function of the patient and the arm."""

    #: one paragraph: where virtual patients come from (the documented population choice)
    population_choice: ClassVar[str] = ""
    #: JSON schemas of ``trials.<name>.population`` (model options of the draw), of
    #: ``trials.<name>.simulation`` (options of every simulation) and of an arm's ``regimen``
    population_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "additionalProperties": False}
    simulation_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "additionalProperties": False}
    regimen_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}
    #: endpoint name -> {"kind": "continuous" | "binary" | "time_to_event", "unit": ..., "description": ...}
    endpoints: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    #: covariate name -> description (the names eligibility, strata and subgroups may use)
    covariates: ClassVar[Mapping[str, str]] = {}
    #: twinflow modules the trial's simulation runs (their digest re-runs the trial's jobs)
    modules: ClassVar[tuple[str, ...]] = ()

    def assumptions(self, population: Mapping[str, Any], simulation: Mapping[str, Any]) -> list[str]:
        """What the population and the simulation assume, for the trial artefact and report."""
        return []

    @abstractmethod
    def population(self, sources: list[SourceTwin], options: Mapping[str, Any], n: int,
                   rng: "Any") -> list[dict[str, Any]]:
        """``n`` candidate virtual patients drawn with ``rng`` (a numpy Generator) from the
        cohort's twins ``sources`` (sorted by patient id) and the model's population model."""

    @abstractmethod
    def simulate_virtual(self, patient: Mapping[str, Any], arm: Mapping[str, Any],
                         options: Mapping[str, Any], sources: Mapping[str, SourceTwin]) -> dict[str, Any]:
        """One virtual patient on one arm (``{"name", "regimen"}``): endpoint name -> value
        (a number; a bool for a binary endpoint; ``{"time": days, "event": bool}`` for a
        time-to-event endpoint).  Bad input: raise :class:`twinflow.errors.InputError`."""


class TwinModel(ABC):
    """A kind of twin.  Subclasses set the class attributes and implement the methods."""

    #: name in ``patients.tsv`` (``twin_model``) and in the config (``models.<name>``)
    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str] = ""
    #: imaging series names the model reads (``imaging.tsv`` ``series``), for documentation and checks
    series: ClassVar[tuple[str, ...]] = ()
    #: series the model reads in their original format, not converted to NIfTI at ingest (e.g. an
    #: ultrasound DICOM with a spectral Doppler region); its segment job gets the raw file
    raw_series: ClassVar[tuple[str, ...]] = ()
    #: extra sheets of the model: config key under ``sheets:`` -> JSON schema of one row (each
    #: row has a ``patient_id``); optional in the config, their rows reach ``PatientContext.sheets``
    sheets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: stage -> twinflow modules it runs (their import closure is the stage's code digest, so
    #: that editing one re-runs exactly the stages that use it)
    stage_modules: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: JSON schema of the model's config section ``models.<name>`` (validated before any job runs)
    config_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}
    #: JSON schema of ``twin.json``'s ``model_results`` (validated when the twin is built and verified)
    results_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}
    #: segmenting a visit needs the previous visit's segmentation (a prior)
    uses_previous_segmentation: ClassVar[bool] = False

    # ------------------------------------------------------------------ stages
    @abstractmethod
    def segment_visits(self, ctx: PatientContext) -> list[str]:
        """Visits that get a segmentation job (asked while Snakemake builds the DAG: sheet rows only)."""

    @abstractmethod
    def segment(self, ctx: PatientContext, visit: str, out_dir: Path) -> None:
        ...

    @abstractmethod
    def estimate(self, ctx: PatientContext, out_dir: Path) -> None:
        ...

    @abstractmethod
    def simulate(self, ctx: PatientContext, estimate_dir: Path, out_dir: Path) -> None:
        ...

    @abstractmethod
    def build_twin(self, ctx: PatientContext, builder: Any, estimate_dir: Path, simulate_dir: Path) -> dict:
        """Add maps/inputs/results/plots to ``builder`` (:class:`twinflow.twin.artefact.TwinBuilder`)
        and return the model's part of twin.json: ``parameters``, ``maps``, ``simulations``,
        ``assumptions``, ``seeds``, ``model_results`` (described by :attr:`results_schema`) and,
        optionally, ``flags`` (problems a reader must see, e.g. an implausible segmentation)."""

    # ------------------------------------------------------------------ from the artefact alone
    @abstractmethod
    def resimulate(self, twin_dir: Path, doc: dict, sim_name: str) -> dict[str, bytes]:
        """Re-create the outputs of the simulation ``sim_name`` of ``doc['simulations']``."""

    @abstractmethod
    def simulate_arm(self, twin_dir: Path, doc: dict, arm: dict | str) -> dict[str, bytes]:
        """Run one treatment arm (a name, or a dict of the model's arm settings)."""

    # ------------------------------------------------------------------ reporting
    @abstractmethod
    def summary(self, doc: dict) -> dict[str, Any]:
        """Headline numbers of one twin for the cohort table of this kind of twin (column -> value)."""

    def report_sections(self, twin_dir: Path, doc: dict) -> list[ReportSection]:
        """The model's sections of the patient report (after the generic parameter table)."""
        return []

    # ------------------------------------------------------------------ in-silico trials
    def trial(self) -> TrialModel | None:
        """The model's part of in-silico trials (:mod:`twinflow.trials`); None: no trials."""
        return None
