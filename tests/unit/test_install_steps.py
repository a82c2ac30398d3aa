"""The install steps that only run on a cold machine, run for real against fake installers first on ``PATH``.

A long-lived machine (and CI on one) already has the Debian packages, environments and jars, so these branches never
ran there; one of them crashed on every fresh machine (``_run`` got ``env`` twice) and a ``type: ignore`` hid it.
Here each step's own code runs on every machine, with fakes that record what they were asked (tests/support).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools import install
from tests.support.fake_tools import FakeTools

pytestmark = pytest.mark.unit

APT_PROVIDES = {pkg: [exe] for exe, pkg in install.DEBIAN_PACKAGES.items()}


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    tools = FakeTools(tmp_path, watch=("DEBIAN_FRONTEND", "SSL_CERT_FILE"))
    for name, value in tools.environ(APT_PROVIDES).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(install, "STAMPS", tmp_path / "stamps")
    return tools


def test_debian_packages_installs_only_what_is_missing_noninteractively(
    fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes.add("apt-get", "java")  # Java is there already; the rest is not
    monkeypatch.setattr(install.os, "geteuid", lambda: 0)

    outcome = install.debian_packages()

    update, get = fakes.calls("apt-get")
    assert update.args == ["update", "-qq"]
    wanted = sorted(pkg for exe, pkg in install.DEBIAN_PACKAGES.items() if exe != "java")
    assert get.args == ["install", "-y", "-qq", "--no-install-recommends", *wanted]
    assert update.env["DEBIAN_FRONTEND"] == get.env["DEBIAN_FRONTEND"] == "noninteractive"
    assert outcome == "installed " + " ".join(wanted)
    # What apt-get put on PATH is found: a second run installs nothing.
    assert install.debian_packages() == "up to date"
    assert len(fakes.calls("apt-get")) == 2


def test_debian_packages_without_root_names_the_command_to_run(
    fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes.add("apt-get")
    monkeypatch.setattr(install.os, "geteuid", lambda: 1000)
    with pytest.raises(install.SetupError, match=r"run as root: apt-get install -y .*redis-server"):
        install.debian_packages()
    assert fakes.calls() == []


def test_a_failing_installer_is_named_with_its_output(fakes: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    fakes.add("apt-get")
    for name, value in fakes.environ(APT_PROVIDES, fail=("apt-get",)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(install.os, "geteuid", lambda: 0)
    with pytest.raises(install.SetupError, match=r"`apt-get update -qq ...` failed \(exit 3\):\napt-get: failing"):
        install.debian_packages()


def test_main_environment_cold_creates_the_venv_gets_uv_and_syncs_the_lock(
    fakes: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    monkeypatch.setattr(install, "MAIN_VENV", venv)
    monkeypatch.setattr(install, "BASE_PYTHON", str(fakes.tool_at(tmp_path / "base" / "base-python")))
    monkeypatch.setenv("PIP_CERT", "/etc/ssl/pip-ca.pem")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)

    assert install.main_environment() == "installed"

    calls = fakes.calls()
    assert [c.tool for c in calls] == ["base-python", "python", "uv", "uv"]
    assert calls[0].args == ["-m", "venv", str(venv)]
    assert calls[1].args == ["-m", "pip", "install", "-q", f"uv=={install.UV_VERSION}"]
    lock = str(install.REPO_ROOT / "requirements" / "main.txt")
    assert calls[2].args == ["pip", "sync", "-q", "--python", str(venv / "bin" / "python"), lock]
    assert calls[3].args[-2:] == ["-e", str(install.REPO_ROOT)] and "--no-deps" in calls[3].args
    # uv is told to trust the CA bundle pip is configured with.
    assert {c.env["SSL_CERT_FILE"] for c in calls} == {"/etc/ssl/pip-ca.pem"}
    # Stamped: a second run does nothing.
    assert install.main_environment() == "up to date"
    assert len(fakes.calls()) == 4


def test_streaming_environment_cold_makes_its_own_venv_with_uv(
    fakes: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main_venv, streaming = tmp_path / "venv", tmp_path / "venv-streaming"
    fakes.tool_at(main_venv / "bin" / "uv")
    monkeypatch.setattr(install, "MAIN_VENV", main_venv)
    monkeypatch.setattr(install, "STREAMING_VENV", streaming)
    monkeypatch.setattr(install, "BASE_PYTHON", "/usr/bin/python3.11")

    assert install.streaming_environment() == "installed"

    venv, sync = fakes.calls("uv")
    assert venv.args == ["venv", "-q", "--python", "/usr/bin/python3.11", str(streaming)]
    lock = str(install.REPO_ROOT / "requirements" / "streaming.txt")
    assert sync.args == ["pip", "sync", "-q", "--python", str(streaming / "bin" / "python"), lock]


@pytest.mark.parametrize(
    ("step", "target", "transitive"), [("kafka_jars", "KAFKA_JARS", "false"), ("flink_jars", "FLINK_JARS", "true")]
)
def test_maven_steps_copy_the_pinned_jars(
    fakes: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, target: str, transitive: str
) -> None:
    fakes.add("mvn")
    jars = tmp_path / "jars"
    monkeypatch.setattr(install, target, jars)

    assert getattr(install, step)() == "installed"

    (call,) = fakes.calls("mvn")
    assert "dependency:copy-dependencies" in call.args and f"-DoutputDirectory={jars}" in call.args
    assert "-DincludeScope=runtime" in call.args
    # Kafka's broker needs its transitive runtime dependencies; the Flink connector jar is self-contained.
    assert f"-DexcludeTransitive={transitive}" in call.args
    assert any(jars.glob("*.jar"))
    assert getattr(install, step)() == "up to date"


def test_flink_functions_are_built_with_maven_and_copied(
    fakes: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes.add("mvn")
    project = tmp_path / "udf"
    (project / "src").mkdir(parents=True)
    (project / "pom.xml").write_text("<project/>")
    (project / "src" / "Fn.java").write_text("class Fn {}")
    monkeypatch.setattr(install, "FLINK_UDF_PROJECT", project)
    monkeypatch.setattr(install, "FLINK_UDF_JARS", tmp_path / "udf-jars")

    assert install.flink_functions() == "installed"

    (call,) = fakes.calls("mvn")
    assert call.args == ["-q", "-B", "-f", str(project / "pom.xml"), "package"]
    assert [p.name for p in (tmp_path / "udf-jars").iterdir()] == ["streaming-udf-0.0.0.jar"]
    # A changed source rebuilds; an unchanged tree does not.
    assert install.flink_functions() == "up to date"
    (project / "src" / "Fn.java").write_text("class Fn { int x; }")
    assert install.flink_functions() == "installed"


def test_a_long_step_says_it_is_still_running(capsys: pytest.CaptureFixture[str]) -> None:
    with install._heartbeat("main environment (.venv)", every_s=0.05):
        install.time.sleep(0.18)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2
    assert all(line.startswith("setup: main environment (.venv): still running (") for line in lines)
