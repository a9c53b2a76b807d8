"""A site's configuration: defaults, checks and the pseudonymisation key.

One entry of the ``hospital:`` config section (schema: twinflow/hospital/config.schema.yaml,
every key explained in config/README.md).  :func:`resolve_site` returns the entry with every
default filled in; it is what the rules pass around (never with the key in it).
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

from twinflow.errors import InputError

SITE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SCENARIO_ID = SITE_ID
BASELINE = "baseline"
KEY_ENV_DEFAULT = "TWINFLOW_HOSPITAL_KEY"

#: XES attribute names, the default column names of a CSV log
XES_COLUMNS = {
    "case": "case:concept:name",
    "activity": "concept:name",
    "timestamp": "time:timestamp",
    "lifecycle": "lifecycle:transition",
    "resource": "org:resource",
    "class": None,
    "patient": None,
}

#: what happens to each kind of bad row or case (see docs/hospital.md, "QC")
QC_POLICIES = {
    "missing_case_id": ("drop", "error"),
    "unparseable_timestamp": ("error", "drop"),
    "missing_activity": ("drop", "error"),
    "out_of_order": ("sort", "error"),
    "single_event_case": ("drop", "keep", "error"),
    "overlapping_activities": ("clip", "keep", "error"),
    "overlapping_stays": ("drop_later", "error"),
}

DEFAULTS: dict[str, Any] = {
    "format": None,  # by extension: .xes / .xes.gz -> xes, else csv
    "demo": False,
    "csv": {"sep": ",", "timestamp_format": None, "encoding": "utf-8"},
    "timezone": None,
    "columns": {},
    "pseudonym_key_env": KEY_ENV_DEFAULT,
    "pseudonym_key": None,
    "qc": {},
    "end_activities": [],
    "areas": {},
    "default_area": "site",
    "activity_resources": {},
    "resources": {},
    "class_priority": {},
    "key_events": {},
    "targets": {},
    "arrival_model": "additive",
    "trend": True,
    "min_observations": 20,
    "validate_from": None,
    "validate_until": None,
    "warmup_days": 7.0,
    "drain_days": 2.0,
    "seed": 1,
    "replications": 4,
    "scenarios": {},
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in ("scenarios", "areas", "resources",
                                                                               "activity_resources", "key_events",
                                                                               "targets", "class_priority"):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_time(value: Any, what: str, site: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    try:
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        raise InputError(f"site {site}: {what} {value!r} is not an ISO date or date-time") from None


def resolve_site(site: str, raw: dict) -> dict:
    """The site entry with defaults filled in, checked; raises :class:`InputError`."""
    if not SITE_ID.match(str(site)):
        raise InputError(f"hospital site id {site!r} must be 1-64 letters, digits, '_' or '-'")
    if not isinstance(raw, dict) or "log" not in raw:
        raise InputError(f"site {site}: 'log' (the event log path) is required")
    cfg = _merge(DEFAULTS, raw)
    cfg["site"] = site
    cfg["columns"] = {**XES_COLUMNS, **(raw.get("columns") or {})}
    qc = {k: v[0] for k, v in QC_POLICIES.items()}
    for k, v in (raw.get("qc") or {}).items():
        if k not in QC_POLICIES:
            raise InputError(f"site {site}: unknown qc rule {k!r} (known: {', '.join(sorted(QC_POLICIES))})")
        if v not in QC_POLICIES[k]:
            raise InputError(f"site {site}: qc.{k} must be one of {', '.join(QC_POLICIES[k])}, not {v!r}")
        qc[k] = v
    cfg["qc"] = qc
    if cfg["format"] is None:
        name = str(cfg["log"]).lower()
        cfg["format"] = "xes" if name.endswith((".xes", ".xes.gz")) else "csv"
    if cfg["arrival_model"] not in ("additive", "hour_of_week"):
        raise InputError(f"site {site}: arrival_model must be 'additive' or 'hour_of_week'")
    for name in list(cfg["scenarios"]) + [BASELINE]:
        if not SCENARIO_ID.match(str(name)):
            raise InputError(f"site {site}: scenario name {name!r} must be letters, digits, '_' or '-'")
    if BASELINE in cfg["scenarios"]:
        raise InputError(f"site {site}: scenario name {BASELINE!r} is reserved for the fitted model as is")
    if int(cfg["replications"]) < 2:
        raise InputError(f"site {site}: replications must be at least 2 (confidence intervals need them)")
    if cfg["validate_from"] is None:
        raise InputError(f"site {site}: validate_from (start of the held-out period) is required")
    vf = parse_time(cfg["validate_from"], "validate_from", site)
    vu = parse_time(cfg["validate_until"], "validate_until", site)
    if vu is not None and vu <= vf:
        raise InputError(f"site {site}: validate_until must be after validate_from")
    cfg["validate_from"] = vf.isoformat()
    cfg["validate_until"] = None if vu is None else vu.isoformat()
    area_of: dict[str, str] = {}
    for area, acts in cfg["areas"].items():
        for a in acts:
            if a in area_of:
                raise InputError(f"site {site}: activity {a!r} is listed in two areas ({area_of[a]}, {area})")
            area_of[a] = area
    for name, ke in cfg["key_events"].items():
        if not {"from", "to"} <= set(ke):
            raise InputError(f"site {site}: key_events.{name} needs 'from' and 'to' activities")
    cfg.pop("pseudonym_key", None)  # never carried along: see pseudonym_key()
    return cfg


def scenario_names(cfg: dict) -> list[str]:
    """The baseline (fitted model as is) first, then the configured scenarios in config order."""
    return [BASELINE] + [s for s in cfg["scenarios"]]


def pseudonym_key(site: str, raw: dict, environ: dict | None = None) -> bytes:
    """The secret key of the case-id hash: the environment variable named by
    ``pseudonym_key_env`` (default ``TWINFLOW_HOSPITAL_KEY``) or, for demo data only, the
    literal ``pseudonym_key`` of the site entry.  The environment wins."""
    environ = os.environ if environ is None else environ
    env_name = raw.get("pseudonym_key_env") or KEY_ENV_DEFAULT
    key = environ.get(env_name) or raw.get("pseudonym_key")
    if not key:
        raise InputError(f"site {site}: no pseudonymisation key: set the environment variable {env_name} "
                         f"(or pseudonym_key in the site entry, for demo data only)")
    if len(str(key)) < 8:
        raise InputError(f"site {site}: the pseudonymisation key must have at least 8 characters")
    return str(key).encode("utf-8")


def log_path(cfg: dict, workdir: str | Path = ".") -> Path:
    p = Path(cfg["log"])
    return p if p.is_absolute() else Path(workdir) / p
