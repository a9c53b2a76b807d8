"""Atomic, deterministic writers.

Every output is written to a temporary file in the destination folder and renamed into
place, so a failed job never leaves a half-written file.  JSON is written with sorted keys
and a fixed float format; gzip streams carry no time stamp or file name.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None, *, mode: int = 0o644,
                sync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    ``suffix`` defaults to the full suffix of ``path`` (e.g. ``.nii.gz``) so that writers
    that choose the format by extension keep working.  The file gets ``mode``; with ``sync``
    its content is flushed to storage before the rename (files that other hosts read from a
    shared file system).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, mode)
        if sync:
            fd = os.open(tmp_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _clean(obj: Any, ndigits: int) -> Any:
    """Convert numpy scalars/arrays and round floats to ``ndigits`` significant digits."""
    if isinstance(obj, dict):
        return {str(k): _clean(v, ndigits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v, ndigits) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v, ndigits) for v in obj.tolist()]
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if not math.isfinite(x):
            return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
        if x == 0.0:
            return 0.0
        return float(f"{x:.{ndigits}g}")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps_json(obj: Any, ndigits: int = 10) -> str:
    """Deterministic JSON text: sorted keys, floats to ``ndigits`` significant digits."""
    return json.dumps(_clean(obj, ndigits), sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, obj: Any, ndigits: int = 10) -> None:
    write_text(path, dumps_json(obj, ndigits))


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def gzip_bytes(data: bytes) -> bytes:
    """gzip with mtime 0 and no embedded file name (byte-identical across runs)."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def write_tsv(path: str | Path, df: "Any", float_format: str = "%.10g") -> None:
    """Write a pandas DataFrame as TSV (no index, fixed float format, '\\n' line ends)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format=float_format, lineterminator="\n", na_rep="")
