"""Finding a Java 17+ runtime for Kafka and Flink."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from local.errors import EmbeddedError

MIN_JAVA = 17


@functools.cache
def java_executable() -> str:
    """Path of ``java`` (``$JAVA_HOME/bin/java`` first, then ``PATH``), checked to be Java 17 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not candidate or not Path(candidate).exists():
        where = f"JAVA_HOME={java_home} has no bin/java" if java_home else "no `java` on PATH"
        raise EmbeddedError(
            f"Java {MIN_JAVA}+ is required for Kafka and Flink, but {where}: "
            "install it (apt-get install openjdk-17-jre-headless, or `make setup` as root) or set JAVA_HOME"
        )
    version = java_major_version(candidate)
    if version < MIN_JAVA:
        raise EmbeddedError(f"{candidate} is Java {version}; Kafka and Flink need Java {MIN_JAVA}+ (set JAVA_HOME)")
    return candidate


def java_major_version(java: str) -> int:
    """Major version reported by ``java -version``."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise EmbeddedError(f"cannot tell the version of {java}: {out.strip()[:200]!r}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major
