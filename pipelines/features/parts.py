"""Parquet part files under a folder given as a local path or an object-store URL (``s3://``, ``gs://``): the
embedded offline store is a local folder, the cluster's is the platform's object store, and fsspec reaches both
(``pathlib`` would turn ``s3://bucket/x`` into a local folder ``s3:/bucket/x``)."""

from __future__ import annotations

import time
import uuid

import pandas as pd


def write_part(frame: pd.DataFrame, folder: str) -> str:
    """Write ``frame`` as a new ``part-<time>-<random>.parquet`` in ``folder``; returns its path.

    The part is written under a hidden name and moved into place, so a reader listing the folder (training, Feast's
    file source, which skips names starting with a dot) never opens half a file."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(folder)
    fs.makedirs(root, exist_ok=True)
    name = f"part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
    path, partial = f"{root.rstrip('/')}/{name}", f"{root.rstrip('/')}/.{name}.partial"
    with fs.open(partial, "wb") as out:
        frame.to_parquet(out, index=False)
    fs.mv(partial, path)
    return str(path)


def read_parts(folder: str, columns: list[str] | None = None) -> list[pd.DataFrame]:
    """Every part file in ``folder`` (only ``columns`` when given), oldest first; none when the folder does not
    exist."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(folder)
    if not fs.isdir(root):
        return []
    frames = []
    for path in sorted(fs.glob(f"{root.rstrip('/')}/part-*.parquet")):
        with fs.open(path, "rb") as part:
            frames.append(pd.read_parquet(part, columns=columns))
    return frames
