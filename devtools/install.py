"""``make setup``: install everything embedded mode and the tests need, from the package registries only.

Runs on the bare interpreter (standard library only) because it creates the environments. Each step is skipped
when a stamp shows its inputs unchanged, so a second run is a fast no-op. Prints what it did, how long each step
took and the disk it uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from local.paths import (
    CACHE_DIR,
    FLINK_JARS,
    FLINK_UDF_JARS,
    FLINK_UDF_PROJECT,
    KAFKA_JARS,
    MAIN_VENV,
    REPO_ROOT,
    STREAMING_VENV,
)

UV_VERSION = "0.13.8"
DEBIAN_PACKAGES = {  # executable -> Debian package
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
    "redis-server": "redis-server",
    "haproxy": "haproxy",
    "prometheus": "prometheus",  # the canary analysis and the alert rules; promtool checks the rules
    "prometheus-alertmanager": "prometheus-alertmanager",  # routes the alerts to the receiver (embedded mode)
}
STAMPS = CACHE_DIR / "stamps"
HEARTBEAT_S = 15.0
BASE_PYTHON = sys.executable
"""The interpreter that makes the environments (the one running setup)."""


class SetupError(RuntimeError):
    pass


def _digest(*paths: Path) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.read_bytes())
    return sha.hexdigest()


def _run(argv: list[str], *, extra_env: Mapping[str, str] | None = None) -> None:
    """Run one install command quietly; on failure raise ``SetupError`` with the tail of its output."""
    env = {**os.environ, **(extra_env or {})}
    # uv verifies TLS against the same CA bundle pip is told to use on this machine.
    if "SSL_CERT_FILE" not in env and env.get("PIP_CERT"):
        env["SSL_CERT_FILE"] = env["PIP_CERT"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise SetupError(f"`{' '.join(argv[:4])} ...` failed (exit {result.returncode}):\n{tail}")


def _stamped(name: str, digest: str, marker: Path, action: Callable[[], None]) -> str:
    """Run ``action`` unless the stamp for ``name`` matches ``digest`` and ``marker`` exists."""
    stamp = STAMPS / name
    if marker.exists() and stamp.exists() and stamp.read_text() == digest:
        return "up to date"
    action()
    STAMPS.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    return "installed"


def debian_packages() -> str:
    missing = sorted({pkg for exe, pkg in DEBIAN_PACKAGES.items() if not shutil.which(exe)})
    if not missing:
        return "up to date"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SetupError(f"missing Debian packages; run as root: apt-get install -y {' '.join(missing)}")
    noninteractive = {"DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], extra_env=noninteractive)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], extra_env=noninteractive)
    return "installed " + " ".join(missing)


def _uv() -> str:
    return str(MAIN_VENV / "bin" / "uv")


def main_environment() -> str:
    lock = REPO_ROOT / "requirements" / "main.txt"
    digest = _digest(lock, REPO_ROOT / "pyproject.toml") + sys.version

    def install() -> None:
        if not (MAIN_VENV / "bin" / "python").exists():
            _run([BASE_PYTHON, "-m", "venv", str(MAIN_VENV)])
        if not Path(_uv()).exists():
            _run([str(MAIN_VENV / "bin" / "python"), "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"])
        _run([_uv(), "pip", "sync", "-q", "--python", str(MAIN_VENV / "bin" / "python"), str(lock)])
        _run(
            [
                _uv(),
                "pip",
                "install",
                "-q",
                "--python",
                str(MAIN_VENV / "bin" / "python"),
                "--no-deps",
                "-e",
                str(REPO_ROOT),
            ]
        )

    return _stamped("main-env", digest, MAIN_VENV / "bin" / "mlstack", install)


def streaming_environment() -> str:
    lock = REPO_ROOT / "requirements" / "streaming.txt"
    digest = _digest(lock) + sys.version

    def install() -> None:
        if not (STREAMING_VENV / "bin" / "python").exists():
            _run([_uv(), "venv", "-q", "--python", BASE_PYTHON, str(STREAMING_VENV)])
        _run([_uv(), "pip", "sync", "-q", "--python", str(STREAMING_VENV / "bin" / "python"), str(lock)])

    return _stamped("streaming-env", digest, STREAMING_VENV / "bin" / "python", install)


def _maven_copy(pom: Path, target: Path, transitive: bool) -> Callable[[], None]:
    def copy() -> None:
        shutil.rmtree(target, ignore_errors=True)
        _run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={target}",
                "-DincludeScope=runtime",
                f"-DexcludeTransitive={str(not transitive).lower()}",
            ]
        )

    return copy


def kafka_jars() -> str:
    pom = REPO_ROOT / "devtools" / "java" / "kafka" / "pom.xml"
    return _stamped("kafka-jars", _digest(pom), KAFKA_JARS, _maven_copy(pom, KAFKA_JARS, transitive=True))


def flink_jars() -> str:
    pom = REPO_ROOT / "devtools" / "java" / "flink" / "pom.xml"
    return _stamped("flink-jars", _digest(pom), FLINK_JARS, _maven_copy(pom, FLINK_JARS, transitive=False))


def flink_functions() -> str:
    """Our Java functions for the streaming job, compiled from pipelines/streaming/udf."""
    sources = sorted([FLINK_UDF_PROJECT / "pom.xml", *FLINK_UDF_PROJECT.rglob("*.java")])

    def build() -> None:
        _run(["mvn", "-q", "-B", "-f", str(FLINK_UDF_PROJECT / "pom.xml"), "package"])
        shutil.rmtree(FLINK_UDF_JARS, ignore_errors=True)
        FLINK_UDF_JARS.mkdir(parents=True)
        for jar in (FLINK_UDF_PROJECT / "target").glob("streaming-udf-*.jar"):
            shutil.copy2(jar, FLINK_UDF_JARS / jar.name)

    return _stamped("flink-udf", _digest(*sources), FLINK_UDF_JARS, build)


def _du_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


STEPS: list[tuple[str, Callable[[], str]]] = [
    ("Debian packages (Java, Maven, Redis, HAProxy, Prometheus, Alertmanager)", debian_packages),
    ("main environment (.venv)", main_environment),
    ("streaming environment (.venv-streaming)", streaming_environment),
    ("Kafka broker jars", kafka_jars),
    ("Flink Kafka SQL connector", flink_jars),
    ("streaming job functions (Java, built with Maven)", flink_functions),
]
# The Pulumi toolchain (render tier, tens of minutes cold) is not a setup step: only `make test` (in the background)
# and `make tools` build it, so `make demo` never builds or waits for what it does not use.


@contextlib.contextmanager
def _heartbeat(title: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """While a step runs (a cold apt-get or environment sync can take minutes), say every ``every_s`` that it does."""
    done = threading.Event()
    began = time.monotonic()

    def beat() -> None:
        while not done.wait(every_s):
            print(f"setup: {title}: still running ({time.monotonic() - began:.0f}s)", flush=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def main() -> int:
    if not (3, 11) <= sys.version_info[:2] <= (3, 12):
        print(
            "setup: Python 3.11 or 3.12 is required (apache-flink 2.2 supports up to 3.12), "
            f"not {sys.version.split()[0]}"
        )
        return 1
    began = time.monotonic()
    report = []
    for number, (title, step) in enumerate(STEPS, start=1):
        print(f"setup: [{number}/{len(STEPS)}] {title} ...", flush=True)
        t0 = time.monotonic()
        try:
            with _heartbeat(title):
                outcome = step()
        except SetupError as error:
            print(f"setup: {title} failed: {error}", file=sys.stderr)
            return 1
        seconds = time.monotonic() - t0
        report.append({"step": title, "outcome": outcome, "seconds": round(seconds, 1)})
        print(f"setup: {title}: {outcome} ({seconds:.1f}s)", flush=True)
    disk = {str(p.relative_to(REPO_ROOT)): round(_du_mb(p)) for p in (MAIN_VENV, STREAMING_VENV, CACHE_DIR / "jars")}
    total = time.monotonic() - began
    print(f"setup: done in {total:.1f}s; disk used (MiB): " + ", ".join(f"{k} {v}" for k, v in disk.items()))
    CACHE_DIR.mkdir(exist_ok=True)
    # Keep the last few runs, so the first (cold) and a repeat (no-op) can be compared in `make bench`.
    history_path = CACHE_DIR / "setup-report.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    history.append({"at": now, "seconds": round(total, 1), "steps": report, "disk_mib": disk})
    history_path.write_text(json.dumps(history[-5:], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
