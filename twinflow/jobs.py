"""Per-patient rules run their script through a ``shell:`` command, with the job's data in a
content-addressed spec file.

Why not ``script:``.  For every job of a ``script:`` rule Snakemake opens the script through
its source cache while it builds the DAG, and compares the script's mtime with the outputs on
every no-op run; with ~26 jobs per patient that was the largest part of twinflow's overhead
over bare Snakemake on large cohorts (docs/scale.md).  ``shell:`` rules have neither cost.

Why a spec file.  A job needs its patient's sheet rows, the model config for its stage and
the code digests that make Snakemake re-run it when they change.  Passing that as a param
makes Snakemake ``repr`` it into its metadata record for every output, and putting it in the
command text makes every printed command and metadata record kilobytes long.  Instead the
job's data and wildcards (its spec) are serialised as canonical JSON, the job's one param is
the text's SHA-256 (the key, :class:`SpecKey`), and the text is written to
``.snakemake/twinflow/jobspecs/<sha256>.json`` in the working directory when the job runs.  Snakemake tracks the key like any param, so a changed row,
config or code digest changes the key and re-runs exactly the jobs whose data changed.  The
command is short::

    <python> <repo>/scripts/run_job.py <script> <key> --log <log> --outputs <paths>
        --inputs name=<path> ...   (the named inputs the script reads)

:func:`main` reads the spec (and checks its SHA-256 against the key), rebuilds a
``snakemake``-like object and runs the unchanged script in ``scripts/`` with it.  Spec files
are written atomically (unique temporary file, fsync, rename) and never change (their name
is their content), so concurrent Snakemake processes and cluster nodes sharing the working
directory can write and read them safely.  They hold sheet rows, so they are readable by
their owner only.  Old specs are not removed; deleting the folder between runs is harmless
(a job's spec is written again when the job runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import runpy
import sys
import time
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, Callable

SPEC_DIR = os.path.join(".snakemake", "twinflow", "jobspecs")


class Namedlist(list):
    """A list whose named items are also attributes (like ``snakemake.io.Namedlist``)."""

    def __init__(self, items=(), names: dict | None = None):
        super().__init__(items)
        self._names = dict(names or {})
        for k, v in self._names.items():
            setattr(self, k, v)

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._names[key]
        return super().__getitem__(key)

    def get(self, key, default=None):
        return self._names.get(key, default)

    def keys(self):
        return self._names.keys()

    def items(self):
        return self._names.items()


def _encode(o: Any):
    from twinflow.sheets import ImageRow

    if isinstance(o, ImageRow):
        return {"__ImageRow__": dict(o.__dict__)}       # flat dataclass of strings: no asdict deep copy
    if is_dataclass(o):
        raise TypeError(f"cannot put a {type(o).__name__} in a job spec")
    if hasattr(o, "item"):                 # numpy scalar
        return o.item()
    raise TypeError(f"cannot put a {type(o).__name__} in a job spec")


def _decode(d: dict):
    if "__ImageRow__" in d and len(d) == 1:
        from twinflow.sheets import ImageRow

        return ImageRow(**d["__ImageRow__"])
    return d


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): equal data gives equal text and key."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_encode)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SpecStore:
    """Spec files under ``root`` (made on first write)."""

    def __init__(self, root: str | os.PathLike = SPEC_DIR):
        self.root = Path(root)

    def key(self, spec: dict) -> str:
        """Store ``spec`` (params, output names, wildcards) and return its key."""
        text = dumps(spec)
        k = digest(text)
        self.write(k, lambda: text)
        return k

    def write(self, key: str, text: Callable[[], str]) -> None:
        """Write the spec ``text()`` under ``key`` unless a file of its size is there already
        (only jobs that run get here, so the check is one stat per job).  The temporary file
        has a unique name (several hosts may write the same spec on a shared file system), is
        readable by its owner only (it holds sheet rows) and is synced before it is renamed."""
        content = text()
        body = content.encode("utf-8")
        final = self.root / f"{key}.json"
        try:
            if final.stat().st_size == len(body):
                return
        except FileNotFoundError:
            pass
        if digest(content) != key:
            raise ValueError(f"job spec does not match its key {key}")
        from twinflow.io.atomic import atomic_path

        with atomic_path(final, suffix=".tmp", mode=0o600, sync=True) as tmp:
            tmp.write_bytes(body)


class SpecKey(str):
    """A job's spec key: the param of a per-patient rule, a plain string to Snakemake (which
    records its ``repr`` and re-runs the job when it changes).  The spec file is written when
    the key is formatted into the job's shell command, which Snakemake does only for jobs it
    is about to run or print: a no-op run writes nothing, and neither does a dry run or
    ``--touch`` (``write=False``).  ``text`` rebuilds the spec's JSON text on demand, so the
    texts are not kept in memory for every job of a large cohort."""

    def __new__(cls, text: Callable[[], str], store: SpecStore, write: bool = True):
        obj = super().__new__(cls, digest(text()))
        obj._text, obj._store, obj._write = text, store, write
        return obj

    def __format__(self, format_spec: str) -> str:
        if self._write:
            self._store.write(str(self), self._text)
        return format(str(self), format_spec)

    def __reduce__(self):                   # pickles (and copies) as the plain key
        return (str, (str(self),))


def load(key: str, root: str | os.PathLike = SPEC_DIR) -> dict:
    """The spec stored under ``key``; refuses a file whose content does not match its name."""
    if not key or any(c not in "0123456789abcdef" for c in key):
        raise SystemExit(f"run_job: malformed job spec key {key!r}")
    path = Path(root) / f"{key}.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit(f"run_job: job spec {path} is missing; run snakemake again in this working "
                         "directory (it writes a job's spec when it runs the job)") from None
    if digest(text) != key:
        raise SystemExit(f"run_job: job spec {path} does not match its key (file changed or damaged): "
                         "delete it and run snakemake again, which writes it anew")
    return json.loads(text, object_hook=_decode)


def _named(paths: list[str], names: list[str]) -> Namedlist:
    if len(names) > len(paths):
        raise SystemExit(f"job spec names {len(names)} paths but the command line gives {len(paths)}")
    return Namedlist(paths, dict(zip(names, paths)))


class Job:
    """What a script in ``scripts/`` reads from its ``snakemake`` object."""

    def __init__(self, spec: dict, *, wildcards: dict[str, str], inputs: dict[str, str], outputs: list[str],
                 log: list[str], threads: int, scriptdir: str):
        self.input = Namedlist(list(inputs.values()), inputs)
        self.output = _named(outputs, spec.get("output_names", []))
        params = spec.get("params", {})
        self.params = Namedlist(list(params.values()), params)
        self.wildcards = Namedlist(list(wildcards.values()), wildcards)
        self.threads = threads
        self.log = Namedlist(log)
        self.resources = Namedlist()
        self.config: dict = {}
        self.scriptdir = scriptdir


# ------------------------------------------------------------------ benchmark tables
# The runner writes each job's benchmark table itself, in the format of Snakemake's
# ``benchmark:`` files, instead of the rules declaring ``benchmark:``: every such declaration
# is one more path per job that Snakemake expands and indexes while it builds the DAG (about
# 6 % of a no-op run at 250 patients, docs/scale.md).  The shell prefix exports the logs and
# benchmarks folders; a job's table has the path of its log with the one folder exchanged for
# the other and ``.log`` for ``.tsv``.

BENCHMARK_HEADER = ("s", "h:m:s", "max_rss", "max_vms", "max_uss", "max_pss", "io_in", "io_out",
                    "mean_load", "cpu_time")


def benchmark_path(log: list[str], env: dict | None = None) -> str | None:
    """The job's benchmark table: its log's path under ``$TWINFLOW_BENCHMARKS`` instead of
    ``$TWINFLOW_LOGS``, with ``.tsv`` for the log's suffix; None without a log under that folder."""
    env = os.environ if env is None else env
    logs, bench = env.get("TWINFLOW_LOGS"), env.get("TWINFLOW_BENCHMARKS")
    if not (logs and bench and log):
        return None
    rel = os.path.relpath(log[0], logs)
    if rel == os.curdir or rel.split(os.sep, 1)[0] == os.pardir:
        return None
    return os.path.join(bench, os.path.splitext(rel)[0] + ".tsv")


def _proc_fields(name: str) -> dict[str, str]:
    try:
        with open(f"/proc/self/{name}", encoding="ascii") as fh:
            return dict(line.split(":", 1) for line in fh if ":" in line)
    except OSError:
        return {}


def _kib(field: str | None) -> int | None:
    """A ``/proc/self/status`` size field ("  123456 kB") in KiB."""
    parts = (field or "").split()
    return int(parts[0]) if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit() else None


def _process_age() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere), so that the wall time
    includes the interpreter's start-up, as in Snakemake's own benchmark tables."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            start = int(fh.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime", encoding="ascii") as fh:
            return max(0.0, float(fh.read().split()[0]) - start)
    except (OSError, ValueError, IndexError):
        return None


class Benchmark:
    """Wall time, peak memory, I/O and CPU time of this process and its children, as one row of
    Snakemake's benchmark table.  Peaks come from the kernel (``VmHWM``, ``VmPeak``, ``getrusage``
    of the children) rather than from sampling, so short jobs get numbers too; ``max_uss`` and
    ``max_pss`` have no kernel peak and are ``NA``; ``mean_load`` is CPU time / wall time in
    percent."""

    def __init__(self):
        self._t0 = time.perf_counter()
        self._age0 = _process_age() or 0.0

    def row(self) -> list[str]:
        import resource

        wall = self._age0 + time.perf_counter() - self._t0
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        unit = 1 if sys.platform == "darwin" else 1024       # ru_maxrss: bytes on macOS, KiB on Linux
        status = _proc_fields("status")
        # This process's own peak is VmHWM: Linux carries the peak of the process that forked
        # it (here the Snakemake process) over into ru_maxrss across exec, so RUSAGE_SELF
        # would report Snakemake's size.  RUSAGE_CHILDREN is the peak of the largest child.
        hwm = _kib(status.get("VmHWM"))
        own_peak = hwm * 1024 if hwm is not None else own.ru_maxrss * unit
        rss = max(own_peak, kids.ru_maxrss * unit) / 2**20
        cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        vm = _kib(status.get("VmPeak"))
        io = _proc_fields("io")

        def mb(v):
            return f"{v:.2f}" if v is not None else "NA"

        return [f"{wall:.2f}", _hms(wall), mb(rss),
                mb(vm / 1024 if vm is not None else None), "NA", "NA",
                mb(int(io["read_bytes"]) / 2**20 if "read_bytes" in io else None),
                mb(int(io["write_bytes"]) / 2**20 if "write_bytes" in io else None),
                mb(100 * cpu / wall if wall > 0 else None), mb(cpu)]

    def write(self, path: str) -> None:
        """Write the table (header + one row) with the project's atomic writer; the row is
        measured before that module (and numpy) is imported."""
        text = "\t".join(BENCHMARK_HEADER) + "\n" + "\t".join(self.row()) + "\n"
        from twinflow.io.atomic import write_text

        write_text(path, text)


def _hms(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    text = "%d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)
    return (f"{days} day{'s' if days != 1 else ''}, " + text) if days else text


OPTIONS = ("--log", "--wildcards", "--outputs", "--inputs")


def parse_args(argv: list[str]) -> tuple[Path, str, dict[str, list[str]]]:
    """``SCRIPT KEY [--log PATH] [--wildcards k=v...] [--outputs PATH...] [--inputs name=PATH...]``;
    an option's values run to the next option (an empty ``--log`` is allowed)."""
    if len(argv) < 2 or argv[0] in OPTIONS or argv[1] in OPTIONS:
        raise SystemExit("usage: run_job.py SCRIPT KEY [--log PATH] [--wildcards k=v...] "
                         "[--outputs PATH...] [--inputs name=PATH...]")
    opts: dict[str, list[str]] = {o: [] for o in OPTIONS}
    current = None
    for a in argv[2:]:
        if a in OPTIONS:
            current = a
        elif current is None:
            raise SystemExit(f"run_job: unexpected argument {a!r} before any option")
        else:
            opts[current].append(a)
    return Path(argv[0]), argv[1], opts


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"run_job: {what} must be name=value, got {item!r}")
        out[name] = value
    return out


def main(argv: list[str] | None = None) -> None:
    """Run a script of ``scripts/`` for one job (see :func:`parse_args` for the arguments)."""
    script, key, opts = parse_args(list(sys.argv[1:] if argv is None else argv))
    spec = load(key)
    wildcards = {**spec.get("wildcards", {}), **_pairs(opts["--wildcards"], "a wildcard")}
    threads = int(os.environ.get("OMP_NUM_THREADS") or 1)     # Snakemake sets it to the job's threads
    log = [p for p in opts["--log"] if p]
    job = Job(spec, wildcards=wildcards, inputs=_pairs(opts["--inputs"], "an input"), outputs=opts["--outputs"],
              log=log, threads=threads, scriptdir=str(script.resolve().parent))
    bench, path = Benchmark(), benchmark_path(log)
    if path:                                 # a table from an earlier run is not this run's
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    runpy.run_path(str(script), init_globals={"snakemake": job}, run_name="__main__")
    if path:
        bench.write(path)


if __name__ == "__main__":
    main()
