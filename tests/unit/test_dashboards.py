"""The dashboards as code: every panel's PromQL parses (promtool, as Prometheus parses a rule), selects only series an
exporter of the project exports, and shows labels its query keeps; the Grafana JSON is grafana-foundation-sdk's
model; the embedded report draws a PNG and says clearly when Prometheus is not there."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import serving.metrics
from local.dashboard_report import (
    Evaluated,
    Line,
    Prometheus,
    current_values,
    duration_s,
    formatted,
    plot_report,
    rate_window,
)
from local.errors import EmbeddedError
from monitoring import dashboards as d
from monitoring import metrics as m
from pipelines.streaming import topic_offsets

BOARDS = d.dashboards(serving.metrics)
QUERIES = [(board, panel, query) for board in BOARDS for panel in board.panels for query in panel.queries]


def test_the_three_dashboards_cover_what_the_issue_names() -> None:
    titles = {board.key: " | ".join(p.title for p in board.panels).lower() for board in BOARDS}
    for word in ("events", "lag", "dead letters", "freshness"):
        assert word in titles["streaming"], word
    for word in ("requests", "errors", "latency", "degraded"):
        assert word in titles["serving"], word
    for word in ("live metric", "calibration", "feature drift", "prediction distribution"):
        assert word in titles["model"], word
    assert len({board.uid for board in BOARDS}) == len(BOARDS)


def test_every_query_selects_only_exported_series() -> None:
    known = d.known_series(serving.metrics)
    assert {
        topic_offsets.RECORDS_TOTAL,
        topic_offsets.LAG,
        m.FRESHNESS.selector,
        serving.metrics.REQUESTS_TOTAL,
    } <= known
    for board, panel, query in QUERIES:
        selected = query.series()
        assert selected, (board.key, panel.title, query.expr)
        assert selected <= known, (board.key, panel.title, selected - known)


def test_every_query_is_for_one_component_and_shows_labels_it_keeps() -> None:
    for board, panel, query in QUERIES:
        assert f'component="{d.COMPONENT_VAR}"' in query.expr, (board.key, panel.title)
        expr = query.promql("fraud", "5m")
        assert "$" not in expr and 'component="fraud"' in expr
        for label in query.legend:  # an aggregation keeps the label the legend names
            assert f"by ({label}" in expr or f", {label}" in expr, (panel.title, label)


def test_a_component_name_cannot_inject_promql() -> None:
    query = BOARDS[1].panels[0].queries[0]
    with pytest.raises(ValueError, match="component"):
        query.promql('fraud"} or up{x="')


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not found: apt-get install prometheus")
def test_every_query_parses_as_prometheus_reads_it(tmp_path: Path) -> None:
    """Each query as a recording rule: ``promtool check rules`` parses its expression with Prometheus' parser."""
    rules = [{"record": f"mlstack:panel_{i}", "expr": q.promql("fraud", "5m")} for i, (_, _, q) in enumerate(QUERIES)]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    check = subprocess.run(["promtool", "check", "rules", "panels.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(rules)} rules found" in check.stdout


def test_grafana_json_is_the_sdk_model_with_every_panel_and_query() -> None:
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    for board in BOARDS:
        data = json.loads(d.grafana_json(board))
        # Read back through the SDK's model: what it does not know or cannot type is lost, so nothing may differ.
        again = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
        assert again == data, board.key
        assert data["uid"] == board.uid and data["title"] == board.title
        (variable,) = data["templating"]["list"]
        assert variable["name"] == "component" and variable["query"].startswith("label_values(")
        assert [p["title"] for p in data["panels"]] == [p.title for p in board.panels]
        for panel, rendered in zip(board.panels, data["panels"], strict=True):
            assert rendered["datasource"] == {"type": "prometheus", "uid": d.DATASOURCE_UID}
            assert rendered["fieldConfig"]["defaults"]["unit"] == panel.unit
            assert [t["expr"] for t in rendered["targets"]] == [q.expr for q in panel.queries]
            assert [t["legendFormat"] for t in rendered["targets"]] == [q.legend_format for q in panel.queries]
            assert len({t["refId"] for t in rendered["targets"]}) == len(panel.queries)


def test_legends_read_like_grafanas() -> None:
    query = d.Query("x", (m.VERSION, m.FEATURE), "p99")
    assert query.legend_format == "p99 {{version}} {{feature}}"
    assert query.series_label({"version": "3", "feature": "amount"}) == "p99 3 amount"
    assert d.Query("x", ()).series_label({}) == "value"


def test_durations_units_and_rate_windows() -> None:
    assert duration_s("30m") == 1800 and duration_s("2h") == 7200 and duration_s("90s") == 90
    for bad in ("30", "m", "-5m", "0m", "5 minutes"):
        with pytest.raises(EmbeddedError, match="duration"):
            duration_s(bad)
    assert rate_window("15s", 1) == "60s" and rate_window("1s", 30) == "30s"
    assert formatted(0.0123, "percentunit") == "1.23%" and formatted(0.0042, "s") == "4.2 ms"
    assert formatted(12.5, "reqps") == "12.50/s" and formatted(float("nan"), "s") == "NaN"


def test_report_draws_every_panel_to_a_png(tmp_path: Path) -> None:
    board = BOARDS[1]
    evaluated = [
        Evaluated(board, board.panels[0], [Line("7", [(1000.0, 1.0), (1010.0, 2.0), (1020.0, float("nan"))])]),
        Evaluated(board, board.panels[2], []),  # no data: drawn as such
        Evaluated(board, board.panels[3], [Line("p99 7", [(1000.0, 0.004)])]),
    ]
    path = plot_report("fraud", evaluated, "30m", tmp_path / "out" / "report.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_prometheus_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(EmbeddedError, match=f"Prometheus is not running at {url}: start .*mlstack services up"):
        current_values(Prometheus(url), "fraud", "15s")


def test_the_cli_says_so_in_one_line(tmp_path: Path) -> None:
    env = {"MLSTACK_STATE_DIR": str(tmp_path), "MLSTACK_PROMETHEUS_PORT": str(_free_port())}
    env = {**os.environ, **env}
    for argv in (["status", "fraud"], ["report", "nosuch", "--since", "x"]):  # Prometheus away; a bad argument
        result = subprocess.run(
            [sys.executable, "-m", "cli", "monitor", *argv], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 1, argv
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
