"""Parquet tables of a trial (population, chunk results, per-patient results), written
deterministically (no index, fixed column order, snappy, one row group) and atomically."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from twinflow.io.atomic import write_bytes


def parquet_bytes(df: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy", row_group_size=max(1, len(df)), write_statistics=False)
    return buf.getvalue()


def write_parquet(path: str | Path, df: pd.DataFrame) -> None:
    write_bytes(path, parquet_bytes(df))


def read_parquet(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def same_table(a: pd.DataFrame, b: pd.DataFrame) -> str:
    """'' when two tables hold the same columns and values (floats compared exactly), else
    the first difference."""
    if list(a.columns) != list(b.columns):
        return f"columns differ: {sorted(set(a.columns) ^ set(b.columns)) or 'order'}"
    if len(a) != len(b):
        return f"{len(a)} rows against {len(b)}"
    for c in a.columns:
        x, y = a[c].reset_index(drop=True), b[c].reset_index(drop=True)
        both_na = x.isna() & y.isna()
        neq = ~(both_na | (x == y))
        if neq.any():
            i = int(neq.to_numpy().nonzero()[0][0])
            return f"column {c!r}, row {i}: {x.iloc[i]!r} against {y.iloc[i]!r}"
    return ""
