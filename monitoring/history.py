"""The monitor's history in the offline store: one row per version per slide, everything the series carried then,
as Parquet under ``<root>/<component>/date=<YYYY-MM-DD>/<window end ms>.parquet`` (one file per slide, partitioned
by the window end's UTC date, so a report reads a day or a range of days with ``pandas.read_parquet(<root>/<c>)``).

Columns: ``window_end`` (UTC timestamp), ``window_s``, ``component``, ``version``, ``metric``, ``rows``,
``labelled``, ``live_metric``, ``holdout_metric``, ``shortfall``, ``mean_predicted``, ``mean_observed``,
``stale_rate``, ``absent_rate``, ``prediction_psi``, ``prediction_pvalue``, and ``features``: a list of
``{feature, psi, p_value, null_rate, reference_null_rate, out_of_range_rate, unseen_rate}`` (NaN where a number
does not apply or was not published)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitoring.metrics import ABSENT, STALE
from monitoring.stats import VersionStats


def history_rows(
    component: str, metric: str, window_s: float, end_ms: int, stats: list[VersionStats]
) -> list[dict[str, Any]]:
    end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    rows: list[dict[str, Any]] = []
    for s in stats:
        predictions = s.predictions
        rows.append(
            {
                "window_end": end,
                "window_s": float(window_s),
                "component": component,
                "version": s.version,
                "metric": metric,
                "rows": s.rows,
                "labelled": s.labelled,
                "live_metric": s.live_metric,
                "holdout_metric": s.holdout_metric,
                "shortfall": s.shortfall,
                "mean_predicted": s.mean_predicted,
                "mean_observed": s.mean_observed,
                "stale_rate": s.incomplete.get(STALE, math.nan),
                "absent_rate": s.incomplete.get(ABSENT, math.nan),
                "prediction_psi": predictions.psi if predictions else math.nan,
                "prediction_pvalue": predictions.p_value if predictions else math.nan,
                "features": [
                    {
                        "feature": name,
                        "psi": float(d.psi),
                        "p_value": float(d.p_value),
                        "null_rate": float(d.null_rate),
                        "reference_null_rate": float(d.reference_null_rate),
                        "out_of_range_rate": float(d.out_of_range_rate),
                        "unseen_rate": float(d.unseen_rate),
                    }
                    for name, d in s.columns.items()
                ],
            }
        )
    return rows


def schema() -> Any:
    """Stated, not inferred: a slide without any profiled column must not write a different type."""
    import pyarrow as pa

    number = pa.float64()
    rates = ("psi", "p_value", "null_rate", "reference_null_rate", "out_of_range_rate", "unseen_rate")
    feature = pa.struct([("feature", pa.string())] + [(n, number) for n in rates])
    columns = [
        ("window_end", pa.timestamp("ms", tz="UTC")),
        ("window_s", number),
        ("component", pa.string()),
        ("version", pa.string()),
        ("metric", pa.string()),
        ("rows", pa.int64()),
        ("labelled", pa.int64()),
    ]
    numbers = ["live_metric", "holdout_metric", "shortfall", "mean_predicted", "mean_observed", "stale_rate"]
    numbers += ["absent_rate", "prediction_psi", "prediction_pvalue"]
    return pa.schema(columns + [(n, number) for n in numbers] + [("features", pa.list_(feature))])


def write_history(root: Path, component: str, end_ms: int, rows: list[dict[str, Any]]) -> Path | None:
    """Write one slide's rows (none: no file); replaced whole, so a reader never sees half a file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        return None
    day = datetime.fromtimestamp(end_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
    path = root / component / f"date={day}" / f"{end_ms}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema()), partial)
    partial.replace(path)
    return path
