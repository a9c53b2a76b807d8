"""Checking the workflow configuration before any job runs.

``config/schemas/config.schema.yaml`` describes the generic part; each twin model describes
its own section ``models.<name>`` (:attr:`twinflow.models.base.TwinModel.config_schema`).
Every problem is reported with the key's path; an unknown key (a typo such as ``sheet:`` or
``horizon_dayz``) is refused with the nearest valid name, never ignored.  Defaults from the
schemas are filled in, so the rest of the workflow sees every key.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any, Mapping

from twinflow.errors import InputError


class ConfigError(InputError):
    """A problem of the configuration (it stops the run before any job)."""


def _path(parts) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _allowed_keys(schema: Mapping[str, Any]) -> list[str]:
    return sorted((schema.get("properties") or {}).keys())


def problems(config: Any, schema: Mapping[str, Any], prefix: tuple = ()) -> list[str]:
    """Every problem of ``config`` against ``schema``, one line each, unknown keys with the
    nearest allowed name."""
    from jsonschema import Draft202012Validator

    out = []
    for err in sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = _path(prefix + tuple(err.absolute_path))
        if err.validator == "additionalProperties":
            allowed = _allowed_keys(err.schema)
            extra = sorted(set(err.instance) - set(allowed))
            for key in extra:
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f" (allowed: {', '.join(allowed) or 'none'})"
                out.append(f"{_path(prefix + tuple(err.absolute_path) + (key,))}: unknown key{hint}")
        else:
            out.append(f"{where}: {err.message}")
    return out


def _fill_defaults(config: Any, schema: Mapping[str, Any]) -> Any:
    """``config`` with the ``default`` of every absent property (recursively)."""
    if not isinstance(config, dict):
        return config
    out = dict(config)
    for key, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = _fill_defaults(out[key], sub)
    return out


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any], *, models: Any = None,
                 source: str = "config") -> dict[str, Any]:
    """The checked configuration with defaults filled in; :class:`ConfigError` listing every
    problem otherwise.  ``models`` is :mod:`twinflow.models.registry` (or an object with
    ``names()`` and ``model_class(name)``): each section under ``models:`` must name a
    registered model and match that model's ``config_schema``."""
    found = problems(dict(config), schema)
    cfg = _fill_defaults(dict(config), schema)
    if models is not None and isinstance(cfg.get("models"), dict):
        known = models.names()
        for name, section in sorted(cfg["models"].items()):
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f" (registered models: {', '.join(known)})"
                found.append(f"models.{name}: unknown twin model{hint}")
                continue
            model_schema = models.model_class(name).config_schema
            section = {} if section is None else section
            found += problems(section, model_schema, ("models", name))
            cfg["models"][name] = _fill_defaults(section, model_schema)
    raise_problems(found, source)
    return cfg


def raise_problems(found: list[str], source: str = "config") -> None:
    """:class:`ConfigError` listing ``found`` (nothing when it is empty)."""
    if found:
        raise ConfigError(found[0] if len(found) == 1 else
                          f"{len(found)} problems:\n  " + "\n  ".join(found), path=source)


def check_section(config: Any, name: str, schema: Mapping[str, Any], source: str = "config") -> None:
    """Check one section of the configuration (``config[name]``) against its own schema."""
    raise_problems(problems(config, schema, (name,)), source)


def stage_config(config: Mapping[str, Any], model: str, stage: str) -> dict[str, Any]:
    """``models.<model>.<stage>`` of a checked configuration ({} when absent)."""
    return dict(((config.get("models") or {}).get(model) or {}).get(stage) or {})
