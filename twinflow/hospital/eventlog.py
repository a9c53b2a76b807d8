"""Event-log ingest: read, pseudonymise, QC, and the canonical activity-instance table.

A log is CSV (one event per row) or XES.  Column names are configurable and default to the
XES attribute names (``case:concept:name``, ``concept:name``, ``time:timestamp``,
``lifecycle:transition``, ``org:resource``).  On ingest:

1. rows without a case id, activity or readable timestamp are handled by the site's ``qc``
   policy (a named :class:`EventLogError`, or the row is dropped and counted);
2. case ids are replaced by a keyed hash (HMAC-SHA256 with the site's secret key, 16 hex
   digits): the raw ids never leave this module, and messages name file rows, not cases;
3. events out of time order within a case are sorted (or refused), ``start``/``complete``
   events are paired into activity instances (other lifecycle transitions are dropped),
   events after a case's first end activity are dropped (a later return is a new stay),
   overlapping instances within a case are clipped, one-event cases dropped, and
   overlapping stays of one patient (when a patient column is given) resolved.

Every repair is counted in the QC record (:func:`ingest` returns it).  The canonical table
(:func:`write_events`) has one row per activity instance: ``case`` (pseudonym), ``class``,
``activity``, ``resource``, ``start`` (empty when the log has no start event for it),
``end``.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from twinflow.errors import InputError
from twinflow.io.atomic import gzip_bytes, write_bytes

CANONICAL = ["case", "class", "activity", "resource", "start", "end"]
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
NO_CLASS = "all"


class EventLogError(InputError):
    """A bad event log, with a stable ``code`` (e.g. ``unparseable_timestamp``)."""

    def __init__(self, code: str, problem: str, *, site: str, path: str | Path | None = None):
        self.code = code
        super().__init__(f"site {site}: {code}: {problem}", path=path)


def pseudonymise(ids: pd.Series, key: bytes) -> pd.Series:
    """Keyed hash of each case id: ``c`` + the first 16 hex digits of HMAC-SHA256(key, id)."""
    uniq = pd.unique(ids)
    table = {u: "c" + hmac.new(key, str(u).encode("utf-8"), hashlib.sha256).hexdigest()[:16] for u in uniq}
    return ids.map(table)


# ---------------------------------------------------------------------------------- reading


def _xes_value(el: ET.Element) -> str | None:
    return el.get("value")


def read_xes(path: str | Path) -> pd.DataFrame:
    """Events of an XES file (plain or gzip) as a frame: trace attributes prefixed ``case:``."""
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    rows: list[dict] = []
    trace_attrs: dict[str, str | None] = {}
    in_trace = False
    depth_event = False
    event: dict[str, str | None] = {}
    with opener(path, "rb") as fh:
        for ev, el in ET.iterparse(fh, events=("start", "end")):
            tag = el.tag.rsplit("}", 1)[-1]
            if ev == "start":
                if tag == "trace":
                    in_trace, trace_attrs = True, {}
                elif tag == "event":
                    depth_event, event = True, {}
                continue
            if tag == "event":
                rows.append({**{f"case:{k}": v for k, v in trace_attrs.items()}, **event})
                depth_event = False
                el.clear()
            elif tag == "trace":
                in_trace = False
                el.clear()
            elif tag in ("string", "date", "int", "float", "boolean", "id") and el.get("key") is not None:
                if depth_event:
                    event[el.get("key")] = _xes_value(el)
                elif in_trace:
                    trace_attrs[el.get("key")] = _xes_value(el)
    return pd.DataFrame(rows)


def read_raw(cfg: dict, path: str | Path) -> pd.DataFrame:
    """The log as strings, one row per event, with the configured columns renamed to roles."""
    path = Path(path)
    site = cfg["site"]
    if not path.is_file():
        raise EventLogError("missing_file", "the event log does not exist", site=site, path=cfg["log"])
    try:
        if cfg["format"] == "xes":
            df = read_xes(path)
            first_row = 1
        else:
            c = cfg["csv"]
            df = pd.read_csv(path, sep=c["sep"], dtype=str, keep_default_na=False, encoding=c["encoding"])
            first_row = 2  # header is row 1
    except (ET.ParseError, pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise EventLogError("unreadable", f"cannot be read as {cfg['format'].upper()} ({type(exc).__name__})",
                            site=site, path=cfg["log"]) from None
    cols = cfg["columns"]
    out = pd.DataFrame(index=df.index)
    for role in ("case", "activity", "timestamp"):
        name = cols[role]
        if name not in df.columns:
            raise EventLogError("missing_column", f"required column {name!r} ({role}) not found; "
                                f"set columns.{role} in the site entry", site=site, path=cfg["log"])
        out[role] = df[name]
    for role in ("lifecycle", "resource", "class", "patient"):
        name = cols.get(role)
        if name and name in df.columns:
            out[role] = df[name]
        elif name and role in ("class", "patient"):
            raise EventLogError("missing_column", f"column {name!r} ({role}) not found", site=site, path=cfg["log"])
    out = out.fillna("").astype(str).apply(lambda s: s.str.strip())
    out["row"] = np.arange(len(out)) + first_row
    return out


_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


def parse_timestamps(values: pd.Series, fmt: str | None, timezone: str | None) -> pd.Series:
    """Naive local date-times; values with a UTC offset are converted to ``timezone`` (or UTC)."""
    nonempty = values[values != ""]
    aware = bool(len(nonempty)) and bool(nonempty.str.contains(_OFFSET).any())
    kw = {"format": fmt} if fmt else {}
    if aware:
        ts = pd.to_datetime(values.where(values != ""), errors="coerce", utc=True, **({"format": fmt} if fmt else {"format": "ISO8601"}))
        ts = ts.dt.tz_convert(timezone or "UTC").dt.tz_localize(None)
    else:
        ts = pd.to_datetime(values.where(values != ""), errors="coerce", **kw)
    return ts.astype("datetime64[ns]")


# ------------------------------------------------------------------------------------- QC


class _QC:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.counts: dict[str, int] = {}
        self.notes: list[str] = []

    def add(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(n)

    def apply(self, rule: str, bad: pd.Series, df: pd.DataFrame, what: str, unit: str = "row") -> pd.DataFrame:
        """Drop the rows flagged in ``bad`` (counted) or raise, by the site's policy for ``rule``."""
        n = int(bad.sum())
        self.add(rule, n)
        if n == 0:
            return df
        policy = self.cfg["qc"][rule]
        if policy == "error":
            first = int(df.loc[bad, "row"].min())
            raise EventLogError(rule, f"{n} {unit}(s) {what} (first at row {first}); "
                                f"set qc.{rule} to '{QC_POLICIES_REPAIR[rule]}' to repair",
                                site=self.cfg["site"], path=self.cfg["log"])
        return df.loc[~bad]


QC_POLICIES_REPAIR = {"missing_case_id": "drop", "unparseable_timestamp": "drop", "missing_activity": "drop",
                      "out_of_order": "sort", "single_event_case": "drop", "overlapping_activities": "clip",
                      "overlapping_stays": "drop_later"}


def _pair_lifecycle(df: pd.DataFrame, qc: _QC) -> pd.DataFrame:
    """Activity instances from start/complete events (FIFO per case and activity)."""
    if "lifecycle" not in df.columns:
        return df.assign(start=pd.NaT, end=df["ts"], order_t=df["ts"]).drop(columns=["ts"])
    lc = df["lifecycle"].str.lower()
    other = ~lc.isin(["start", "complete", ""])
    qc.add("other_lifecycle_dropped", int(other.sum()))
    df = df.loc[~other].assign(lc=lc[~other].replace("", "complete"))
    df = df.assign(k=df.groupby(["case", "activity", "lc"], sort=False).cumcount())
    keys = ["case", "activity", "k"]
    starts = df[df["lc"] == "start"].drop(columns=["lc"])
    comps = df[df["lc"] == "complete"].drop(columns=["lc"])
    inst = comps.merge(starts[keys + ["ts", "row"]].rename(columns={"ts": "start", "row": "srow"}),
                       on=keys, how="outer", sort=False)
    # a start without a complete keeps the start event's attributes
    lone = inst["ts"].isna()
    if lone.any():
        attrs = starts.set_index(keys)
        idx = pd.MultiIndex.from_frame(inst.loc[lone, keys])
        for col in [c for c in starts.columns if c not in keys + ["ts", "row"]]:
            inst.loc[lone, col] = attrs[col].reindex(idx).to_numpy()
    qc.add("complete_without_start", int((inst["start"].isna() & inst["ts"].notna()).sum()) if len(starts) else 0)
    # a start without a complete: still running when the log was cut (right-censored); it
    # keeps end = NaT and the fit treats its duration as censored
    qc.add("start_without_complete", int(lone.sum()))
    bad = inst["ts"].notna() & inst["start"].notna() & (inst["ts"] < inst["start"])
    qc.add("complete_before_start_dropped", int(bad.sum()))
    inst = inst.loc[~bad]
    for col in ("class", "resource", "patient"):
        if col in inst.columns:
            inst[col] = inst[col].fillna("")
    inst["row"] = inst["row"].fillna(inst["srow"]).astype(int)
    inst = inst.rename(columns={"ts": "end"})
    # a start without a complete: the activity was still running when the log was cut
    # (right-censored); it keeps end = NaT and is handled by the fit
    inst["order_t"] = inst["start"].fillna(inst["end"])
    return inst.drop(columns=["k", "srow"])


def ingest(cfg: dict, path: str | Path, key: bytes) -> tuple[pd.DataFrame, dict]:
    """Read and check a site's log; returns (canonical instances, QC record)."""
    qc = _QC(cfg)
    df = read_raw(cfg, path)
    qc.add("rows_read", len(df))
    df = qc.apply("missing_case_id", df["case"] == "", df, "without a case id")
    df = qc.apply("missing_activity", df["activity"] == "", df, "without an activity")
    ts = parse_timestamps(df["timestamp"], cfg["csv"]["timestamp_format"], cfg["timezone"])
    df = qc.apply("unparseable_timestamp", ts.isna(), df.assign(ts=ts), "with an unparseable or empty timestamp")
    df = df.drop(columns=["timestamp"])
    df["case"] = pseudonymise(df["case"], key)  # raw ids end here
    if "patient" in df.columns:
        df["patient"] = pseudonymise(df["patient"], key)
    # events out of time order within a case (the file order is the order of record)
    prev = df.groupby("case", sort=False)["ts"].shift()
    back = prev.notna() & (df["ts"] < prev)
    cases_back = df.loc[back, "case"].nunique()
    qc.add("cases_out_of_order", cases_back)
    if cases_back and cfg["qc"]["out_of_order"] == "error":
        raise EventLogError("out_of_order", f"{cases_back} case(s) have events out of time order "
                            f"(first at row {int(df.loc[back, 'row'].min())}); set qc.out_of_order to 'sort' "
                            "to sort them by time", site=cfg["site"], path=cfg["log"])
    df = df.sort_values(["case", "ts", "row"], kind="stable")
    inst = _pair_lifecycle(df, qc)
    inst = inst.sort_values(["case", "order_t", "row"], kind="stable").reset_index(drop=True)
    inst = _end_activities(inst, cfg, qc)
    inst = _overlaps(inst, cfg, qc)
    inst = _single_event(inst, cfg, qc)
    inst = _overlapping_stays(inst, cfg, qc)
    inst = _classes(inst, qc)
    if inst.empty:
        raise EventLogError("empty", "no usable case left after QC", site=cfg["site"], path=cfg["log"])
    if "resource" not in inst.columns:
        inst["resource"] = ""
    out = inst[CANONICAL].reset_index(drop=True)
    record = _qc_record(out, qc)
    return out, record


def _end_activities(inst: pd.DataFrame, cfg: dict, qc: _QC) -> pd.DataFrame:
    ends = set(cfg["end_activities"])
    if not ends:
        qc.add("events_after_end_dropped", 0)
        return inst
    is_end = inst["activity"].isin(ends)
    # events after the first end activity of a case belong to a later stay (e.g. a return)
    seen = is_end.groupby(inst["case"]).cumsum() - is_end.astype(int)
    after = seen > 0
    qc.add("events_after_end_dropped", int(after.sum()))
    return inst.loc[~after]


def _overlaps(inst: pd.DataFrame, cfg: dict, qc: _QC) -> pd.DataFrame:
    """An instance that starts before the previous one of its case ended."""
    prev_end = inst.groupby("case", sort=False)["end"].shift()
    ov = inst["start"].notna() & prev_end.notna() & (inst["start"] < prev_end)
    n = int(ov.sum())
    qc.add("overlapping_activities", n)
    if not n:
        return inst
    policy = cfg["qc"]["overlapping_activities"]
    if policy == "error":
        raise EventLogError("overlapping_activities", f"{n} activity instance(s) start before the previous "
                            f"activity of the same case ended (first at row {int(inst.loc[ov, 'row'].min())}); "
                            "set qc.overlapping_activities to 'clip'", site=cfg["site"], path=cfg["log"])
    if policy == "clip":
        # the later activity is taken to start when the earlier one ended (a patient is in
        # one activity at a time in the simulation); an instance clipped past its own end
        # becomes instantaneous
        inst = inst.copy()
        inst.loc[ov, "start"] = np.minimum(prev_end[ov], inst.loc[ov, "end"].fillna(prev_end[ov]))
    return inst


def _single_event(inst: pd.DataFrame, cfg: dict, qc: _QC) -> pd.DataFrame:
    size = inst.groupby("case", sort=False)["activity"].transform("size")
    single = size == 1
    n = int(single.sum())
    qc.add("single_event_cases", n)
    if not n:
        return inst
    policy = cfg["qc"]["single_event_case"]
    if policy == "error":
        raise EventLogError("single_event_case", f"{n} case(s) have a single event (first at row "
                            f"{int(inst.loc[single, 'row'].min())}); set qc.single_event_case to 'drop' or 'keep'",
                            site=cfg["site"], path=cfg["log"])
    return inst.loc[~single] if policy == "drop" else inst


def _overlapping_stays(inst: pd.DataFrame, cfg: dict, qc: _QC) -> pd.DataFrame:
    """Stays (cases) of one patient that overlap in time: the later-starting one is dropped."""
    if "patient" not in inst.columns:
        qc.add("overlapping_stays", 0)
        return inst
    t = inst.assign(t0=inst["start"].fillna(inst["end"]), t1=inst["end"].fillna(inst["start"]))
    stays = t.groupby("case").agg(patient=("patient", "first"), t0=("t0", "min"), t1=("t1", "max"),
                                  row=("row", "min"))
    stays = stays[stays["patient"] != ""].sort_values(["patient", "t0", "row"])
    reach = stays.groupby("patient")["t1"].cummax().groupby(stays["patient"]).shift()
    ov = reach.notna() & (stays["t0"] < reach)
    n = int(ov.sum())
    qc.add("overlapping_stays", n)
    if n and cfg["qc"]["overlapping_stays"] == "error":
        raise EventLogError("overlapping_stays", f"{n} stay(s) start before an earlier stay of the same patient "
                            f"ended (first at row {int(stays.loc[ov, 'row'].min())}); set qc.overlapping_stays "
                            "to 'drop_later'", site=cfg["site"], path=cfg["log"])
    return inst.loc[~inst["case"].isin(set(stays.index[ov]))]


def _classes(inst: pd.DataFrame, qc: _QC) -> pd.DataFrame:
    if "class" not in inst.columns:
        return inst.assign(**{"class": NO_CLASS})
    first = inst["class"].where(inst["class"] != "").groupby(inst["case"]).transform("first")
    missing = first.isna()
    qc.add("cases_without_class", int(inst.loc[missing, "case"].nunique()))
    return inst.assign(**{"class": first.fillna("unknown")})


def _qc_record(inst: pd.DataFrame, qc: _QC) -> dict:
    t = inst["start"].fillna(inst["end"])
    first = t.groupby(inst["case"]).min()
    return {
        "counts": dict(sorted(qc.counts.items())),
        "cases": int(inst["case"].nunique()),
        "activity_instances": int(len(inst)),
        "instances_with_start": int(inst["start"].notna().sum()),
        "first_arrival": first.min().isoformat(),
        "last_arrival": first.max().isoformat(),
        "last_event": pd.concat([inst["start"], inst["end"]]).max().isoformat(),
        "activities": {k: int(v) for k, v in sorted(inst["activity"].value_counts().items())},
        "classes": {k: int(v) for k, v in sorted(inst.groupby("class")["case"].nunique().items())},
    }


# --------------------------------------------------------------------------- canonical table


def _fmt_ts(s: pd.Series) -> pd.Series:
    return s.dt.strftime(TS_FORMAT).fillna("")


def write_events(path: str | Path, inst: pd.DataFrame) -> None:
    df = inst.assign(start=_fmt_ts(inst["start"]), end=_fmt_ts(inst["end"]))
    buf = io.StringIO()
    df[CANONICAL].to_csv(buf, sep="\t", index=False, lineterminator="\n")
    write_bytes(path, gzip_bytes(buf.getvalue().encode("utf-8")))


def read_events(path: str | Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for c in ("start", "end"):
        df[c] = pd.to_datetime(df[c].where(df[c] != ""), format=TS_FORMAT).astype("datetime64[ns]")
    return df
