"""Run a per-patient rule's script from a ``shell:`` command instead of ``script:``.

Why.  For every job of a ``script:`` rule, Snakemake opens the script through its source
cache while it builds the DAG (to check it exists) and compares the script's mtime with the
outputs on every no-op run.  With ~26 jobs per patient that was the largest part of
twinflow's overhead over bare Snakemake at 1000 patients (docs/scale.md).  ``shell:`` rules
have neither cost, so the per-patient rules run::

    <python> <repo>/scripts/run_job.py <script> <threads> <log> --outputs <paths> --inputs <paths> <<'TWINFLOW_JOB'
    <job spec: JSON>
    TWINFLOW_JOB

The job spec (one ``job`` param, built by ``rules/common.smk``) holds the job's wildcards,
params and the names of its leading inputs and outputs; the paths and threads come on the
command line.  :func:`main` rebuilds a ``snakemake``-like object
from it and runs the unchanged script in ``scripts/`` with it, so a script works the same
under both directives.  The spec is read from stdin (a here-document), so its size is not
limited by the command-line length.  It is canonical JSON (sorted keys): Snakemake stores the
param in its metadata and re-runs the job when it changes.
"""

from __future__ import annotations

import json
import runpy
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any


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


class Params(Namedlist):
    pass


def _encode(o: Any):
    from twinflow.sheets import ImageRow

    if isinstance(o, ImageRow):
        return {"__ImageRow__": asdict(o)}
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
    """Canonical JSON of a param value (the form it has in the job spec)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_encode)


def spec(wildcards, params: dict[str, str], *, input_names=(), output_names=()) -> str:
    """The job spec as one JSON string.  ``params`` maps names to values already in canonical
    JSON (:func:`dumps`, cached per patient by the caller), so the large per-patient context
    is serialised once, not once per job.  The spec depends on the wildcards only: Snakemake
    treats a param computed from ``input`` / ``output`` as derived and leaves it out of its
    params-changed check, so the paths come on the command line instead and ``input_names`` /
    ``output_names`` name the leading paths in rule order."""
    body = ",".join(f"{json.dumps(k)}:{v}" for k, v in sorted(params.items()))
    head = json.dumps({"input_names": list(input_names), "output_names": list(output_names),
                       "wildcards": {k: str(v) for k, v in wildcards.items()}}, sort_keys=True,
                      separators=(",", ":"))
    return head[:-1] + ',"params":{' + body + "}}"


def _named(paths: list[str], names: list[str]) -> Namedlist:
    if len(names) > len(paths):
        raise SystemExit(f"job spec names {len(names)} paths but the command line gives {len(paths)}")
    return Namedlist(paths, dict(zip(names, paths)))


class Job:
    """What a script in ``scripts/`` reads from its ``snakemake`` object."""

    def __init__(self, d: dict, *, inputs: list[str], outputs: list[str], log: list[str], threads: int,
                 scriptdir: str):
        self.input = _named(inputs, d.get("input_names", []))
        self.output = _named(outputs, d.get("output_names", []))
        self.params = Params(list(d["params"].values()), d["params"])
        self.wildcards = Namedlist(list(d["wildcards"].values()), d["wildcards"])
        self.threads = threads
        self.log = Namedlist(log)
        self.resources = Namedlist()
        self.config: dict = {}
        self.scriptdir = scriptdir


def main(argv: list[str] | None = None) -> None:
    """``run_job.py SCRIPT THREADS LOG --outputs PATH... --inputs PATH...``, spec on stdin."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        script, threads, log = Path(argv[0]), int(argv[1]), argv[2]
        i, j = argv.index("--outputs"), argv.index("--inputs")
    except (IndexError, ValueError):
        raise SystemExit("usage: run_job.py SCRIPT THREADS LOG --outputs PATH... --inputs PATH... < spec.json") from None
    outputs, inputs = argv[i + 1:j], argv[j + 1:]
    d = json.loads(sys.stdin.read(), object_hook=_decode)
    job = Job(d, inputs=inputs, outputs=outputs, log=[log] if log else [], threads=threads,
              scriptdir=str(script.resolve().parent))
    runpy.run_path(str(script), init_globals={"snakemake": job}, run_name="__main__")


if __name__ == "__main__":
    main()
