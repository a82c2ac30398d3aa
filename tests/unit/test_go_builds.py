"""The Go builds a cold machine runs (policy tools, upstream judges, the Pulumi CLI and provider), run for real
against a fake ``go`` first on ``PATH`` that records its calls: the build code's own path runs on every machine,
whether or not its outputs are already cached here (tests/support/fake_tools.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools import go_tools as tools
from devtools import pulumi_builds as pulumi_toolchain
from devtools.go_build import Go
from tests.support.fake_tools import FakeTools

pytestmark = pytest.mark.unit


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    fake = FakeTools(tmp_path, watch=("GOBIN", "GOFLAGS", "CGO_ENABLED", "VERSION"))
    fake.add("go")
    for name, value in fake.environ().items():
        monkeypatch.setenv(name, value)
    return fake


def test_policy_tool_is_go_installed_at_its_pin_into_the_tools_folder(
    fakes: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "TOOLS_DIR", tmp_path / "tools")
    monkeypatch.setattr(tools, "_go", lambda: str(fakes.bin / "go"))  # the machine's /usr/local/go must not answer
    tool = tools.TOOLS["kube-score"]

    found, outcome = tools.ensure("kube-score")

    (call,) = fakes.calls("go")
    assert call.args == ["install", f"{tool.package}@{tool.version}"]
    assert call.env["GOBIN"] == str(tool.directory) and call.env["CGO_ENABLED"] == "0"
    assert found == tool.binary and found.exists()
    assert outcome.startswith(f"kube-score: built {tool.version}")
    assert tools.ensure("kube-score")[0] == found and len(fakes.calls("go")) == 1  # cached


def test_judges_are_built_from_our_module_readonly_and_stamped_by_their_sources(
    fakes: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "judges"
    source.mkdir()
    for file, text in {"go.mod": "module judges\n", "go.sum": "", "main.go": "package main\n"}.items():
        (source / file).write_text(text)
    monkeypatch.setattr(tools, "TOOLS_DIR", tmp_path / "tools")
    monkeypatch.setattr(tools, "_go", lambda: str(fakes.bin / "go"))
    monkeypatch.setitem(tools.LOCAL_TOOLS, "judges", tools.LocalTool("judges", source))

    found, _ = tools.ensure("judges")

    (call,) = fakes.calls("go")
    assert call.args[:4] == ["build", "-trimpath", "-mod=readonly", "-buildvcs=false"] and call.args[-1] == "."
    assert call.cwd == str(source)
    assert found is not None and found.exists()
    # A changed source is a new stamp: rebuilt into a new folder, the old build removed.
    (source / "main.go").write_text("package main\n// changed\n")
    rebuilt, _ = tools.ensure("judges")
    assert rebuilt is not None and rebuilt != found and rebuilt.exists() and not found.exists()


def test_pulumi_cli_and_provider_cold_build(fakes: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulumi_toolchain, "TOOLS_DIR", tmp_path / "tools")
    lines: list[str] = []
    go = Go(fakes.bin / "go", lines.append)

    root, outcome = pulumi_toolchain.build_cli(go, lines.append)
    binary, version, provider_outcome = pulumi_toolchain.build_provider(go, lines.append)

    assert (outcome, provider_outcome) == ("built", "built")
    calls = [c.args for c in fakes.calls("go")]
    cli, sdk, provider = (f"{m}@{v}" for m, v in [
        (pulumi_toolchain.CLI_MODULE, pulumi_toolchain.CLI_VERSION),
        (pulumi_toolchain.SDK_MODULE, pulumi_toolchain.CLI_VERSION),
        (pulumi_toolchain.PROVIDER_MODULE, pulumi_toolchain.PROVIDER_VERSION),
    ])  # fmt: skip
    assert ["mod", "download", "-json", cli] in calls and ["mod", "download", "-json", sdk] in calls
    assert ["mod", "download", "-json", provider] in calls
    # The wrapper module requires pkg and sdk at one version and keeps only the remote replaces.
    wrapper = (root / "src" / "go.mod").read_text()
    assert f"{pulumi_toolchain.CLI_MODULE} {pulumi_toolchain.CLI_VERSION}" in wrapper
    assert "github.com/a/b => github.com/c/b v1.2.3" in wrapper and "../x" not in wrapper
    # The provider's generate.go runs with the version stamped, before the build embeds its output.
    generate = next(c for c in fakes.calls("go") if c.args[0] == "run")
    assert generate.env["VERSION"] == version == pulumi_toolchain.PROVIDER_VERSION.lstrip("v")
    assert (root / "bin" / "pulumi").exists() and binary.exists()
    assert all((root / "bin" / Path(h).name).exists() for h in pulumi_toolchain.PYTHON_HELPERS)
    assert go.packages_compiled == 4  # two per build, counted from `go build -v`
    # A second run finds both stamps fresh and runs no go command.
    before = len(fakes.calls("go"))
    assert pulumi_toolchain.build_cli(go, lines.append)[1] == "up to date"
    assert pulumi_toolchain.build_provider(go, lines.append)[2] == "up to date"
    assert len(fakes.calls("go")) == before
