"""Stand-ins for the installers a cold machine runs (apt-get, mvn, pip, uv, go), first on ``PATH`` in a test.

Each fake records its arguments, working folder and the environment variables a test asks about, one JSON line per
call, and leaves behind what the real tool would (an executable, a jar, a venv's python, a built binary), so the
install code's own path runs on every machine whether the real packages are there or not. They never touch the
network. A call a test did not expect fails loudly (exit 97) instead of passing silently.
"""

from __future__ import annotations

import json
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The fake's program: one script for every tool name (it looks at its own name), run by the test's interpreter.
_PROGRAM = r"""
import json, os, sys
from pathlib import Path

name, args = Path(sys.argv[0]).name, sys.argv[1:]
bin_dir = Path(os.environ["FAKE_TOOLS_BIN"])
with open(os.environ["FAKE_TOOLS_LOG"], "a") as log:
    seen = {k: os.environ.get(k) for k in os.environ.get("FAKE_TOOLS_WATCH", "").split(",") if k}
    log.write(json.dumps({"tool": name, "path": sys.argv[0], "args": args, "cwd": os.getcwd(), "env": seen}) + "\n")

def executable(path, target=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target or sys.argv[0])

def option(prefix):
    return next(a[len(prefix):] for a in args if a.startswith(prefix))

if name in os.environ.get("FAKE_TOOLS_FAIL", "").split(","):
    print(f"{name}: failing as the test asked", file=sys.stderr)
    sys.exit(3)
if name == "apt-get":
    if args[0] == "install":
        provides = json.loads(os.environ["FAKE_TOOLS_APT_PROVIDES"])
        for package in args[1:]:
            for exe in provides.get(package, []):
                executable(bin_dir / exe)
elif name == "mvn":
    pom = Path(args[args.index("-f") + 1])
    if "dependency:copy-dependencies" in args:
        out = Path(option("-DoutputDirectory="))
        out.mkdir(parents=True, exist_ok=True)
        (out / "fake-dependency.jar").write_bytes(b"PK")
    elif "package" in args:
        (pom.parent / "target").mkdir(exist_ok=True)
        (pom.parent / "target" / "streaming-udf-0.0.0.jar").write_bytes(b"PK")
elif name == "python":  # a venv's python: only `-m pip install uv==...` is expected
    if args[:3] != ["-m", "pip", "install"]:
        sys.exit(97)
    executable(Path(sys.argv[0]).parent / "uv")
elif name == "uv":
    if args[0] == "venv":
        executable(Path(args[-1]) / "bin" / "python")
    elif args[:2] == ["pip", "install"] and "-e" in args:
        executable(Path(args[args.index("--python") + 1]).parent / "mlstack")
    elif args[:2] != ["pip", "sync"]:
        sys.exit(97)
elif name == "base-python":  # the interpreter that runs setup: `-m venv <dir>`
    if args[:2] != ["-m", "venv"]:
        sys.exit(97)
    executable(Path(args[2]) / "bin" / "python")
elif name == "go":
    if args == ["version"]:
        print("go version go1.26.8 linux/amd64")
    elif args == ["env", "GOFLAGS"]:
        print("")
    elif args[:3] == ["mod", "download", "-json"]:  # a module in the fake module cache, as `go mod download` says
        module, version = args[3].split("@")
        root = Path(os.environ["FAKE_TOOLS_GO_MODULES"]) / f"{module}@{version}"
        for helper in ("python/cmd/pulumi-language-python-exec", "python/dist/pulumi-resource-pulumi-python"):
            (root / helper).parent.mkdir(parents=True, exist_ok=True)
            (root / helper).write_text("#!/bin/sh\n")
        command = root / "cmd" / "pulumi-resource-kubernetes"
        command.mkdir(parents=True, exist_ok=True)
        for file in ("main.go", "generate.go", "schema.json"):
            (command / file).write_text("package main\n")
        go_mod = root / "go.mod"
        go_mod.write_text(
            f"module {module}\n\nreplace (\n"
            "\tgithub.com/a/b => github.com/c/b v1.2.3\n\tgithub.com/local/x => ../x\n)\n"
        )
        print(json.dumps({"Path": module, "Version": version, "Dir": str(root), "GoMod": str(go_mod)}))
    elif args[0] == "run" and "generate.go" in args:
        for file in ("schema-embed.json", "terraform-mapping-embed.json"):
            Path(file).write_text("{}")
    elif args[0] == "build":
        out = Path(args[args.index("-o") + 1])
        print("github.com/fake/pkg/one\ngithub.com/fake/pkg/two", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("#!/bin/sh\n")
        out.chmod(0o755)
    elif args[0] == "install":
        out = Path(os.environ["GOBIN"]) / args[1].split("@")[0].rsplit("/", 1)[-1]
        out.write_text("#!/bin/sh\n")
        out.chmod(0o755)
    else:
        sys.exit(97)
else:
    sys.exit(97)
"""


@dataclass(frozen=True)
class Call:
    tool: str
    args: list[str]
    cwd: str
    env: dict[str, str | None]


class FakeTools:
    """A folder of fake installers plus the log of their calls."""

    def __init__(self, root: Path, watch: tuple[str, ...] = ()) -> None:
        self.bin = root / "fake-bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.log = root / "fake-tools.jsonl"
        self.log.touch()
        self.program = root / "fake-tool.py"
        self.program.write_text(f"#!{sys.executable}\n{_PROGRAM}")
        self.program.chmod(self.program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.watch = watch

    def add(self, *names: str) -> None:
        """Put fakes named ``names`` on the fake ``PATH``."""
        for name in names:
            link = self.bin / name
            if not link.exists():
                link.symlink_to(self.program)

    def tool_at(self, path: Path) -> Path:
        """A fake at an exact path (a venv's python), acting as the tool its file name says."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(self.program)
        return path

    def environ(self, apt_provides: dict[str, list[str]] | None = None, fail: tuple[str, ...] = ()) -> dict[str, str]:
        """Variables for the test's environment: ``PATH`` holds the fakes only (no real installer is reachable)."""
        return {
            "PATH": str(self.bin),
            "FAKE_TOOLS_BIN": str(self.bin),
            "FAKE_TOOLS_LOG": str(self.log),
            "FAKE_TOOLS_WATCH": ",".join(self.watch),
            "FAKE_TOOLS_APT_PROVIDES": json.dumps(apt_provides or {}),
            "FAKE_TOOLS_FAIL": ",".join(fail),
            "FAKE_TOOLS_GO_MODULES": str(self.bin.parent / "go-modules"),
        }

    def calls(self, tool: str | None = None) -> list[Call]:
        rows: list[dict[str, Any]] = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [Call(r["tool"], r["args"], r["cwd"], r["env"]) for r in rows if tool is None or r["tool"] == tool]
