"""The project's Dockerfiles (``images/*/Dockerfile``), parsed: base images pinned (a tag that is not ``latest``; the
final stage's base also by digest), the final stage runs as a fixed non-root user, nothing secret is baked in (no
ENV/ARG named like a credential, no credential in a URL, no secret files copied), Python dependencies install only
from the hashed lock files, remote files are checksum-verified, and each build context holds only what it copies."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra import images

DOCKERFILES = sorted(images.IMAGES_DIR.glob("*/Dockerfile"))
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|ACCESS_KEY|PRIVATE_KEY|API_KEY|CREDENTIAL)", re.IGNORECASE)
URL_CREDENTIAL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
SECRET_FILES = re.compile(r"(\.env|id_rsa|\.pem|\.key|credentials|\.netrc|\.pypirc|kubeconfig)\b", re.IGNORECASE)


@dataclass
class Stage:
    base: str
    alias: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(path: Path) -> list[Stage]:
    """Stages of a Dockerfile: ``FROM`` lines start one; continuation lines are joined; comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], alias))
        else:
            assert stages, f"{path}: {keyword} before FROM"
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def _pinned(image: str) -> bool:
    if "@sha256:" in image:
        return re.search(r"@sha256:[0-9a-f]{64}$", image) is not None
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.parent.name for p in DOCKERFILES])
def test_base_images_are_pinned(path: Path) -> None:
    stages = parse(path)
    aliases = {s.alias for s in stages if s.alias}
    for stage in stages:
        if stage.base in aliases:
            continue
        assert _pinned(stage.base), f"{path.parent.name}: unpinned base {stage.base}"
        assert "$" not in stage.base, f"{path.parent.name}: base image from a build argument"
    final = stages[-1].base
    assert "@sha256:" in final, f"{path.parent.name}: the runtime base must be pinned by digest too"
    syntax = path.read_text().splitlines()[0]
    assert re.match(r"^# syntax=docker/dockerfile:\d+\.\d+", syntax), "frontend not pinned to a version"


@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.parent.name for p in DOCKERFILES])
def test_final_stage_runs_as_fixed_non_root_user(path: Path) -> None:
    users = [arg for keyword, arg in parse(path)[-1].instructions if keyword == "USER"]
    assert users, f"{path.parent.name}: no USER in the final stage (it would run as root)"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, f"{path.parent.name}: USER {users[-1]} is not a numeric non-root uid"


@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.parent.name for p in DOCKERFILES])
def test_no_secrets_baked_in(path: Path) -> None:
    for stage in parse(path):
        for keyword, arg in stage.instructions:
            if keyword in ("ENV", "ARG", "LABEL"):
                names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", arg) or [arg.split()[0]]
                assert not [n for n in names if SECRET_NAME.search(n)], f"{path.parent.name}: {keyword} {arg}"
            assert not URL_CREDENTIAL.search(arg), f"{path.parent.name}: credential in a URL: {arg}"
            if keyword in ("COPY", "ADD"):
                sources = [w for w in shlex.split(arg) if not w.startswith("--")][:-1]
                assert not [s for s in sources if SECRET_FILES.search(s)], f"{path.parent.name}: {arg}"
            assert "--mount=type=secret" not in arg or keyword == "RUN"


@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.parent.name for p in DOCKERFILES])
def test_dependencies_only_from_hashed_locks_and_checksummed_downloads(path: Path) -> None:
    runs = [arg for stage in parse(path) for keyword, arg in stage.instructions if keyword == "RUN"]
    pip = [r for r in runs if "pip install" in r]
    assert pip, f"{path.parent.name}: installs no Python dependencies"
    for command in pip:
        # The lock, by hash; or the project itself, which may download nothing (no dependencies, no index).
        locked = "--require-hashes" in command and "-r /tmp/requirements.txt" in command
        assert locked or {"--no-deps", "--no-index"} <= set(command.split()), command
    copies = [arg for stage in parse(path) for keyword, arg in stage.instructions if keyword == "COPY"]
    locks = [c for c in copies if c.startswith("requirements/")]
    assert locks and all(c.split()[0].endswith(".txt") for c in locks), "copies the lock file, not the .in"
    for lock in locks:
        text = (images.REPO_ROOT / lock.split()[0]).read_text()
        assert "--hash=sha256:" in text
    for stage in parse(path):
        for keyword, arg in stage.instructions:
            if keyword == "ADD" and "://" in arg:
                assert re.search(r"--checksum=sha256:[0-9a-f]{64}", arg), f"unverified download: {arg}"
            if keyword == "RUN":
                assert not re.search(r"\b(curl|wget)\b", arg), f"{path.parent.name}: download without checksum"


# Every image spec: the shared ones and one component's (the others differ only in their build arguments).
SPECS = {
    **images.IMAGES,
    **{f"{name}-fraud": images.for_component(name, "fraud") for name in images.PER_COMPONENT},
}


def _expand(word: str, spec: images.ImageSpec) -> str:
    """A COPY source with the spec's build arguments substituted (as BuildKit does), without a trailing slash."""
    for key, value in spec.build_args:
        word = word.replace(f"${{{key}}}", value)
    return word.rstrip("/")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_build_context_holds_what_the_image_copies(name: str) -> None:
    spec = SPECS[name]
    ignore = spec.dockerfile.with_name("Dockerfile.dockerignore").read_text().splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "the context starts empty and lists what it admits"
    admitted = {r[1:] for r in rules if r.startswith("!")}
    for source in spec.sources:
        in_context = any(source == a or source.startswith(a + "/") for a in admitted)
        assert in_context, f"{name}: {source} is hashed into the tag but not in the build context"
    copied = [
        _expand(w, spec)
        for stage in parse(spec.dockerfile)
        for keyword, arg in stage.instructions
        if keyword == "COPY" and "--from=" not in arg
        for w in [shlex.split(arg)[-2]]
    ]
    for source in copied:
        assert any(source == a or source.startswith(a + "/") for a in admitted), f"{name}: copies {source}"
        in_tag = any(source == s or source.startswith(s + "/") for s in spec.sources)
        assert in_tag, f"{name}: {source} is copied but not part of the content tag"
    assert spec.dockerfile in images.context_files(spec)


@pytest.mark.parametrize("name", sorted(n for n, spec in SPECS.items() if "ENTRY_POINTS" in dict(spec.build_args)))
def test_images_with_components_register_exactly_their_entry_points(name: str, tmp_path: Path) -> None:
    """The registry finds components only through ``mlstack.components`` entry points: code on ``PYTHONPATH`` alone
    has no metadata, so the image writes its own pyproject (only its components' entry points, not the project's
    file, whose every line would be in every image) and installs it after copying the code. The pyproject-writing
    part of that ``RUN`` is run here with ``sh`` and the result parsed."""
    spec = SPECS[name]
    instructions = [(k, a) for k, a in parse(spec.dockerfile)[-1].instructions if k in ("COPY", "RUN")]
    assert not [a for k, a in instructions if k == "COPY" and "pyproject.toml" in a], "copies the project's file"
    installs = [i for i, (k, a) in enumerate(instructions) if k == "RUN" and re.search(r"pip install .*-e /app\b", a)]
    assert installs, f"{name}: the project is not installed"
    code = [i for i, (k, a) in enumerate(instructions) if k == "COPY" and a.split()[-1].startswith("/app/")]
    assert max(code) < installs[0], f"{name}: the project is installed before all of its code is copied"
    script, _, install = instructions[installs[0]][1].rpartition("&& pip install")
    assert "--no-index" in install and "/app/pyproject.toml" in script
    env = {"PATH": "/usr/bin:/bin", **dict(spec.build_args)}
    subprocess.run(["sh", "-c", script.replace("/app/", f"{tmp_path}/")], env=env, check=True)
    written = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    registered = written["project"]["entry-points"]["mlstack.components"]
    expected = images.entry_points() if not spec.variant else {spec.variant: images.entry_points()[spec.variant]}
    assert registered == expected
    assert written["tool"]["setuptools"]["packages"] == []  # the code is on PYTHONPATH; only the metadata


def test_parser_catches_a_root_user_and_an_unpinned_base(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nENV DB_PASSWORD=hunter2\nUSER root\n")
    stages = parse(bad)
    assert not _pinned(stages[0].base)
    assert stages[0].instructions[-1] == ("USER", "root")
    assert SECRET_NAME.search("DB_PASSWORD")


def test_main_lock_has_the_cluster_drivers() -> None:
    lock = (images.REPO_ROOT / "requirements" / "main.txt").read_text()
    pinned = {line.split("==")[0].lower() for line in lock.splitlines() if "==" in line and not line.startswith(" ")}
    assert {"psycopg", "boto3", "s3fs"} <= pinned, {"psycopg", "boto3", "s3fs"} - pinned


def test_streaming_image_has_the_file_system_its_checkpoints_use() -> None:
    """The FlinkDeployment keeps checkpoints under ``s3://``: the image must enable Flink's S3 plugin, and copy
    Flink from the base pinned by digest (its jars end up in the runtime image)."""
    from contract.registry import load
    from infra.use_cases.streaming import state_root

    assert state_root(load("fraud")).startswith("s3://")
    stages = parse(images.IMAGES_DIR / "streaming" / "Dockerfile")
    flink = next(s for s in stages if s.alias == "flink")
    assert re.search(r"@sha256:[0-9a-f]{64}$", flink.base), flink.base
    runs = " ".join(arg for stage in stages for keyword, arg in stage.instructions if keyword == "RUN")
    assert re.search(r"/opt/flink/opt/flink-s3-fs-\w+-[\d.]+\.jar /opt/flink/plugins/s3-fs-\w+/", runs), runs
