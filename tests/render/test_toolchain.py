"""The toolchain step's own logic: the wrapper go.mod it generates, and the reason it gives when nothing is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedded import pulumi_toolchain
from embedded.pulumi_toolchain import _remote_replaces, _wrapper_go_mod

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


def test_locate_says_what_to_run_when_nothing_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulumi_toolchain, "TOOLS_DIR", tmp_path)
    found = pulumi_toolchain.locate()
    assert isinstance(found, str)
    assert "make tools" in found or "Go not found" in found
    (tmp_path / "unavailable.txt").write_text("Go not found: install Go\ndetails")
    assert "Go not found" in str(pulumi_toolchain.locate())
