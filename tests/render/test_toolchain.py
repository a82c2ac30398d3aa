"""The toolchain step's own logic: the wrapper go.mod it generates, and the reason it gives when nothing is built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools import go_build, pulumi_builds, pulumi_toolchain, toolchain_report
from devtools.pulumi_builds import _remote_replaces, _wrapper_go_mod

PKG_GO_MOD = """module github.com/pulumi/pulumi/pkg/v3

go 1.26.6

replace github.com/pulumi/pulumi/sdk/v3 => ../sdk // local: only works inside the upstream repository

replace (
\tgithub.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
\texample.com/local => ./local
)

require github.com/pulumi/pulumi/sdk/v3 v3.274.1
"""


def test_wrapper_copies_only_the_replaces_that_point_at_modules() -> None:
    assert _remote_replaces(PKG_GO_MOD) == [
        "github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e"
    ]


def test_wrapper_go_mod_requires_cli_and_sdk_at_one_version() -> None:
    text = _wrapper_go_mod(
        "pulumi",
        "1.26",
        {"github.com/pulumi/pulumi/pkg/v3": "v3.274.1", "github.com/pulumi/pulumi/sdk/v3": "v3.274.1"},
        _remote_replaces(PKG_GO_MOD),
    )
    assert "module mlstack.local/toolchain/pulumi\n" in text
    assert "\tgithub.com/pulumi/pulumi/pkg/v3 v3.274.1\n\tgithub.com/pulumi/pulumi/sdk/v3 v3.274.1\n" in text
    assert "github.com/atotto/clipboard => github.com/tgummerer/clipboard" in text
    assert "../sdk" not in text


def _no_go() -> Path:
    raise go_build.GoMissing("Go not found: install Go 1.26+ (https://go.dev/dl/) to build the Pulumi CLI")


def _record_toolchain(tools: Path, cli: Path, provider: Path) -> None:
    toolchain = pulumi_builds.Toolchain(
        pulumi_root=cli.parent.parent,
        cli_version=pulumi_builds.CLI_VERSION,
        cli_source="built from Go modules",
        provider_bin=provider,
        provider_version=pulumi_builds.PROVIDER_VERSION.lstrip("v"),
        wanted_provider_version="4.34.2",
        pulumi_home=tools / "pulumi-home",
    )
    (tools / "toolchain.json").write_text(json.dumps(pulumi_toolchain._to_json(toolchain)))


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(pulumi_toolchain, "TOOLS_DIR", tmp_path)
    monkeypatch.setattr(pulumi_toolchain, "go_binary", lambda: Path("/usr/bin/go"))
    return tmp_path


def test_locate_skips_only_when_go_is_missing(tools: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulumi_toolchain, "go_binary", _no_go)
    found = pulumi_toolchain.locate()
    assert isinstance(found, str) and found.startswith("Go not found: install Go") and "\n" not in found
    (tools / "unavailable.txt").write_text("Go not found: install Go\nGo not found: install Go")
    assert str(pulumi_toolchain.locate()).startswith("Go not found")


def test_locate_fails_when_nothing_is_built(tools: Path) -> None:
    with pytest.raises(go_build.ToolchainError, match="not built: run `make tools`"):
        pulumi_toolchain.locate()


def test_locate_fails_on_a_build_error_with_the_log_tail(tools: Path) -> None:
    (tools / "unavailable.txt").write_text("`go build -v -trimpath` failed (exit 1)\ndetails")
    (tools / "build.log").write_text("tools: pulumi CLI ...\n" + "\n".join(f"line {i}" for i in range(100)))
    with pytest.raises(go_build.ToolchainError) as failed:
        pulumi_toolchain.locate()
    message = str(failed.value)
    assert "build failed: `go build -v -trimpath` failed (exit 1)" in message
    assert "line 99" in message and "line 50" not in message  # the tail, not the whole log


def test_locate_fails_when_a_binary_is_missing_after_the_build(tools: Path) -> None:
    cli = tools / "pulumi-x" / "bin" / "pulumi"
    cli.parent.mkdir(parents=True)
    cli.write_text("")
    (tools / "pulumi-x" / "build.log").write_text("$ go build ...\nok")
    _record_toolchain(tools, cli, tools / "provider" / "pulumi-resource-kubernetes")
    with pytest.raises(go_build.ToolchainError, match="pulumi-resource-kubernetes is missing") as failed:
        pulumi_toolchain.locate()
    assert "$ go build" in str(failed.value)
    provider = tools / "provider" / "pulumi-resource-kubernetes"
    provider.parent.mkdir()
    provider.write_text("")
    assert isinstance(pulumi_toolchain.locate(), pulumi_builds.Toolchain)


def test_report_keeps_each_parts_newest_build_apart_from_warm_runs(
    tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_file = tools / "report.json"
    monkeypatch.setattr(toolchain_report, "REPORT_FILE", report_file)
    old_format = [
        {
            "at": "2026-11-25 22:00:00",
            "seconds": 1700.0,
            "steps": [
                {"name": "pulumi CLI", "outcome": "built: /x/pulumi", "seconds": 900.0},
                {"name": "kubernetes provider", "outcome": "built: /x/provider", "seconds": 800.0},
            ],
        }
    ]
    report_file.write_text(json.dumps(old_format))
    warm = [
        toolchain_report.StepReport("pulumi CLI", "up to date: /x/pulumi", 0.0),
        toolchain_report.StepReport("kubernetes provider", "up to date: /x/provider", 0.0),
    ]
    for _ in range(toolchain_report.KEEP_RUNS + 2):
        toolchain_report.record(warm, 0.3, "go version go1.26.8")
    failed = toolchain_report.StepReport("kubernetes provider", "failed: `go build` failed", 12.5, built=False)
    toolchain_report.record([warm[0], failed], 12.6, "go version go1.26.8", error="`go build` failed\ntail")
    rebuilt = toolchain_report.StepReport("kubernetes provider", "built: /x/provider", 60.0, True, 42, 3)
    toolchain_report.record([warm[0], rebuilt], 60.1, "go version go1.26.8")

    report = toolchain_report.read_report(report_file)
    assert len(report["runs"]) == toolchain_report.KEEP_RUNS
    assert report["builds"]["pulumi CLI"]["seconds"] == 900.0  # the cold build outlives the warm runs
    assert report["builds"]["kubernetes provider"]["seconds"] == 60.0  # the newest build of the part
    assert report["builds"]["kubernetes provider"]["packages_compiled"] == 42
    assert [f["outcome"] for f in report["failures"]] == ["failed"]
    assert report["failures"][0]["steps"][1]["outcome"].startswith("failed")


def test_package_lines_are_what_go_build_v_prints_per_package() -> None:
    matches = go_build._PACKAGE_LINE.match
    assert matches("github.com/pulumi/pulumi/sdk/v3/go/common/util/contract") and matches("net/http")
    assert not matches("go: downloading github.com/x/y v1.0.0") and not matches('"Path": "x",')
