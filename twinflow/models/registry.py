"""Twin models are found through the ``twinflow.models`` entry-point group.

``twin_model`` in patients.tsv names an entry point of that group.  The built-in models are
registered in twinflow's own ``pyproject.toml``; a separate package registers its own the
same way, and is then usable without any edit to twinflow::

    [project.entry-points."twinflow.models"]
    mymodel = "mypackage.model:MyTwin"      # a twinflow.models.base.TwinModel subclass

The group is read once per process (``importlib.metadata``); a model's class is imported the
first time it is asked for.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

from twinflow.models.base import STAGES, TwinModel

GROUP = "twinflow.models"
#: the generic code each stage runs around the model (part of every model's stage digest)
GENERIC_STAGE_MODULES = {"segment": (), "estimate": (), "simulate": (), "twin": ("twinflow.twin.build",),
                         "report": ("twinflow.report.html",)}


class UnknownModel(KeyError):
    """``twin_model`` names no registered model."""

    def __str__(self) -> str:          # KeyError would quote the message
        return str(self.args[0])


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.name, e.value)):
        found.setdefault(ep.name, ep)
    return found


def names() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_entry_points())


def unknown_message(name: str) -> str:
    known = names()
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if not known:
        return (f"unknown twin model {name!r}: no twin model is registered (is twinflow installed? "
                "pip install -e . registers the built-in models)")
    return f"unknown twin model {name!r} (known: {', '.join(known)}){hint}"


@lru_cache(maxsize=None)
def model_class(name: str) -> type[TwinModel]:
    try:
        ep = _entry_points()[name]
    except KeyError:
        raise UnknownModel(unknown_message(name)) from None
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, TwinModel)):
        raise TypeError(f"entry point {GROUP}:{name} = {ep.value} is not a twinflow.models.base.TwinModel subclass")
    if cls.name != name:
        raise TypeError(f"entry point {GROUP}:{name} = {ep.value} has name {cls.name!r}")
    return cls


def get(name: str) -> TwinModel:
    """An instance of the model registered as ``name``."""
    return model_class(name)()


def sheet_schemas() -> dict[str, dict]:
    """The extra sheets the registered models read: sheet name (config ``sheets:`` key) ->
    JSON schema of one row.  Two models may share a sheet only with the same schema."""
    out: dict[str, dict] = {}
    for name in names():
        for sheet, schema in model_class(name).sheets.items():
            if sheet in out and out[sheet] != schema:
                raise TypeError(f"twin models declare the sheet {sheet!r} with different schemas")
            out[sheet] = dict(schema)
    return out


def stage_digest(name: str, stage: str) -> str:
    """Code digest of one stage of a model: the source of the plug-in's own module plus the
    import closure of the modules that stage runs (``stage_modules`` and the generic code of
    the stage)."""
    from twinflow.provenance import code_digest

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
    cls = model_class(name)
    return code_digest(*cls.stage_modules.get(stage, ()), *GENERIC_STAGE_MODULES[stage], shallow=(cls.__module__,))


def model_digest(name: str) -> str:
    """Code digest of the whole model (every stage), recorded in its twins."""
    from twinflow.provenance import code_digest

    cls = model_class(name)
    modules = sorted({m for mods in cls.stage_modules.values() for m in mods})
    return code_digest(cls.__module__, *modules)
