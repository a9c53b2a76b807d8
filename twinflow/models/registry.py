"""Twin models plug in here: ``twin_model`` in patients.tsv names one of these.

A model is a class with ``name``, ``version`` and the methods the generic workflow stages
call (see :class:`twinflow.models.base.TwinModel`).  Adding a kind of twin is adding a module
and one line below, not editing rules.
"""

from __future__ import annotations

from importlib import import_module

MODELS = {
    "oncology": "twinflow.models.oncology.twin:OncologyTwin",
    "cardiac": "twinflow.models.cardiac.twin:CardiacTwin",
}


def get(name: str):
    try:
        target = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown twin model {name!r} (known: {', '.join(sorted(MODELS))})") from None
    mod, cls = target.split(":")
    return getattr(import_module(mod), cls)()


def module_of(name: str) -> str:
    return MODELS[name].split(":")[0]


def stage_digest(name: str, stage: str) -> str:
    """Code digest of one stage of a model: the plug-in module's own source plus the import
    closure of the modules that stage runs (``stage_modules`` of the model class)."""
    from twinflow.provenance import code_digest

    mod, cls = MODELS[name].split(":")
    modules = getattr(getattr(import_module(mod), cls), "stage_modules", {}).get(stage, ())
    return code_digest(*modules, shallow=(mod,))
