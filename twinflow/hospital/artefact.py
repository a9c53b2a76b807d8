"""The hospital twin artefact: one self-contained, hashed, re-simulable folder per site.

``<results>/hospital/<site>/twin/``:

* ``hospital_twin.json`` -- the entry point: the event log by path, size and SHA-256, the QC
  counts, the resolved site configuration (never the pseudonymisation key), the seeds of
  every replication, the scenarios, software versions, the validation figures and a
  ``manifest`` with the SHA-256 of every other file;
* ``model.json`` (the fitted model) and ``fit.json`` (how it was fitted);
* ``sim/<scenario>/rep<r>.json`` and ``rep<r>.cases.tsv.gz`` -- every replication;
* ``validation.json``, ``validation_hourly.tsv``, ``scenarios.tsv``, ``qc.json``.

:func:`verify` checks every hash and re-runs every replication from ``model.json``, the
scenario and the seed alone, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import twinflow
from twinflow.hospital.scenarios import apply_scenario, cases_bytes, replicate
from twinflow.io.atomic import dumps_json, gzip_bytes

FORMAT = "twinflow.hospital_twin"
FORMAT_VERSION = "1.0.0"
ENTRY = "hospital_twin.json"
PACKAGES = ("numpy", "scipy", "pandas", "simpy", "statsmodels", "snakemake")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def software() -> dict:
    out = {"python": platform.python_version(), "twinflow": twinflow.__version__, "packages": {}}
    for p in PACKAGES:
        try:
            out["packages"][p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out["packages"][p] = None
    return out


def replication_files(model: dict, scenario: str, spec: dict, seed: int, rep: int) -> dict[str, bytes]:
    """The two files of one replication, as bytes (``rep<r>.json``, ``rep<r>.cases.tsv.gz``)."""
    m = model if scenario == "baseline" else apply_scenario(model, scenario, spec)
    summary, cases = replicate(m, seed, rep)
    return {f"rep{rep}.json": dumps_json(summary).encode(), f"rep{rep}.cases.tsv.gz": gzip_bytes(cases_bytes(cases))}


def build(twin_dir: str | Path, *, site_cfg: dict, log_display: str, log_file: str | Path, files: dict[str, Path],
          replications: dict[str, list[Path]]) -> Path:
    """Write the artefact folder (under a temporary name, renamed into place).

    ``files``: artefact-relative name -> produced file (model.json, validation.json ...);
    ``replications``: scenario -> that scenario's replication files.
    """
    twin_dir = Path(twin_dir)
    twin_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{twin_dir.name}.", dir=twin_dir.parent))
    stage.chmod(0o755)
    try:
        for rel, src in sorted(files.items()):
            shutil.copyfile(src, stage / rel)
        sims = []
        for sc, paths in sorted(replications.items()):
            (stage / "sim" / sc).mkdir(parents=True, exist_ok=True)
            for p in sorted(paths, key=lambda x: x.name):
                shutil.copyfile(p, stage / "sim" / sc / p.name)
            reps = sorted({int(p.name.split(".")[0][3:]) for p in paths})
            for r in reps:
                sims.append({"scenario": sc, "rep": r, "seed": int(site_cfg["seed"]),
                             "outputs": [f"sim/{sc}/rep{r}.json", f"sim/{sc}/rep{r}.cases.tsv.gz"]})
        qc = json.loads((stage / "qc.json").read_text())
        doc = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "site": site_cfg["site"],
            "inputs": [{"role": "event_log", "path": log_display, "size": Path(log_file).stat().st_size,
                        "sha256": sha256_file(log_file)}],
            "qc": qc["counts"],
            "config": {"resolved": site_cfg, "sha256": hashlib.sha256(dumps_json(site_cfg).encode()).hexdigest()},
            "model": {"file": "model.json", "sha256": sha256_file(stage / "model.json")},
            "seeds": {"seed": int(site_cfg["seed"]), "replications": int(site_cfg["replications"]),
                      "streams": "numpy SeedSequence(seed, spawn_key=(rep, crc32(purpose))) per purpose"},
            "scenarios": {"baseline": {}, **site_cfg["scenarios"]},
            "simulations": sims,
            "validation": json.loads((stage / "validation.json").read_text()),
            "software": software(),
        }
        doc["manifest"] = {f.relative_to(stage).as_posix(): sha256_file(f)
                           for f in sorted(stage.rglob("*")) if f.is_file()}
        (stage / ENTRY).write_text(dumps_json(doc), encoding="utf-8")
        if twin_dir.exists():
            shutil.rmtree(twin_dir)
        stage.rename(twin_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return twin_dir


@dataclass
class VerifyReport:
    twin_dir: str
    checked_files: int = 0
    resimulated: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        if self.ok:
            return [f"{self.twin_dir}: OK: {self.checked_files} file hashes match, "
                    f"{self.resimulated} replication(s) re-simulated byte-identical"]
        return [f"{self.twin_dir}: FAILED: {len(self.problems)} problem(s)"] + [f"  {p}" for p in self.problems]


def verify(twin_dir: str | Path, *, resimulate: bool = True) -> VerifyReport:
    twin_dir = Path(twin_dir)
    rep = VerifyReport(str(twin_dir))
    try:
        doc = json.loads((twin_dir / ENTRY).read_text())
    except FileNotFoundError:
        rep.problems.append(f"{ENTRY}: missing")
        return rep
    except ValueError as exc:
        rep.problems.append(f"{ENTRY}: not valid JSON ({exc})")
        return rep
    if doc.get("format") != FORMAT:
        rep.problems.append(f"{ENTRY}: format is {doc.get('format')!r}, not {FORMAT!r}")
        return rep
    manifest = doc.get("manifest", {})
    for rel, digest in sorted(manifest.items()):
        f = twin_dir / rel
        if not f.is_file():
            rep.problems.append(f"{rel}: listed in the manifest but missing")
            continue
        rep.checked_files += 1
        if sha256_file(f) != digest:
            rep.problems.append(f"{rel}: SHA-256 differs from the manifest")
    present = {f.relative_to(twin_dir).as_posix() for f in twin_dir.rglob("*") if f.is_file()}
    for rel in sorted(present - set(manifest) - {ENTRY}):
        rep.problems.append(f"{rel}: present but not in the manifest")
    if resimulate and not rep.problems:
        model = json.loads((twin_dir / "model.json").read_text())
        for sim in doc["simulations"]:
            produced = replication_files(model, sim["scenario"], doc["scenarios"].get(sim["scenario"], {}),
                                         sim["seed"], sim["rep"])
            for rel in sim["outputs"]:
                name = rel.rsplit("/", 1)[-1]
                if produced.get(name) != (twin_dir / rel).read_bytes():
                    rep.problems.append(f"{rel}: re-simulation differs from the stored file")
            rep.resimulated += 1
    return rep
