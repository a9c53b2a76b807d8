"""``twinflow verify``: check a twin artefact's hashes and re-run its simulations from it alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twinflow.models import registry
from twinflow.twin.artefact import ENTRY, load, sha256_file, validate


@dataclass
class VerifyReport:
    twin_dir: str
    checked_files: int = 0
    resimulated_files: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        head = (f"{self.twin_dir}: OK: {self.checked_files} file hashes match, "
                f"{self.resimulated_files} re-simulated file(s) byte-identical") if self.ok else \
               f"{self.twin_dir}: FAILED: {len(self.problems)} problem(s)"
        return [head] + [f"  {p}" for p in self.problems]


def check_manifest(folder: Path, manifest: dict[str, str], entry: str) -> tuple[int, list[str]]:
    """Files of an artefact folder against its manifest (every other file than ``entry``):
    the number of files whose hash was checked and the problems, one line each."""
    problems, checked = [], 0
    for rel, digest in sorted(manifest.items()):
        f = folder / rel
        if not f.is_file():
            problems.append(f"{rel}: listed in the manifest but missing")
            continue
        checked += 1
        if sha256_file(f) != digest:
            problems.append(f"{rel}: SHA-256 differs from the manifest")
    present = {f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file()}
    problems += [f"{rel}: present but not in the manifest" for rel in sorted(present - set(manifest) - {entry})]
    return checked, problems


def verify(twin_dir: str | Path, *, resimulate: bool = True) -> VerifyReport:
    twin_dir = Path(twin_dir)
    rep = VerifyReport(str(twin_dir))
    try:
        doc = load(twin_dir)
    except FileNotFoundError:
        rep.problems.append(f"{ENTRY}: missing")
        return rep
    except ValueError as exc:
        rep.problems.append(f"{ENTRY}: not valid JSON ({exc})")
        return rep
    rep.problems += [f"{ENTRY}: schema: {p}" for p in validate(doc)]
    checked, problems = check_manifest(twin_dir, doc.get("manifest", {}), ENTRY)
    rep.checked_files += checked
    rep.problems += problems
    if resimulate and not rep.problems:
        model = registry.get(doc["model"]["name"])
        for sim in doc.get("simulations", []):
            produced = model.resimulate(twin_dir, doc, sim["name"])
            for rel in sim["outputs"]:
                if rel not in produced:
                    rep.problems.append(f"{rel}: simulation {sim['name']} did not produce it")
                elif produced[rel] != (twin_dir / rel).read_bytes():
                    rep.problems.append(f"{rel}: re-simulation of {sim['name']} differs from the stored file")
                else:
                    rep.resimulated_files += 1
    return rep
