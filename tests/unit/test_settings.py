from __future__ import annotations

from pathlib import Path

import pytest

from local.errors import EmbeddedError
from local.kafka_broker import server_properties
from local.settings import EmbeddedSettings


def test_ports_come_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLSTACK_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MLSTACK_KAFKA_PORT", "19999")
    settings = EmbeddedSettings.from_env()
    assert settings.kafka_port == 19999
    assert settings.kafka_bootstrap == "127.0.0.1:19999"
    assert settings.state_dir == tmp_path.resolve()


@pytest.mark.parametrize(("value", "message"), [("abc", "is not a port number"), ("70000", "outside 1-65535")])
def test_bad_port_is_named(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("MLSTACK_MLFLOW_PORT", value)
    with pytest.raises(EmbeddedError, match=f"MLSTACK_MLFLOW_PORT.*{message}"):
        EmbeddedSettings.from_env()


def test_two_services_on_one_port_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSTACK_REDIS_PORT", "9092")
    with pytest.raises(EmbeddedError, match="redis_port and kafka_port are both set to port 9092"):
        EmbeddedSettings.from_env()


def test_broker_config_is_single_node_kraft(tmp_path: Path) -> None:
    settings = EmbeddedSettings(state_dir=tmp_path, kafka_port=1234, kafka_controller_port=1235)
    props = dict(
        line.split("=", 1) for line in server_properties(settings, tmp_path / "data").splitlines() if "=" in line
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:1235"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1234"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["auto.create.topics.enable"] == "false"


def test_a_deep_state_folder_gets_short_stable_socket_paths() -> None:
    """HAProxy refuses a stats socket path over 97 bytes (a pytest folder inside a test's own folder reached 126)."""
    from local.paths import SOCKET_PATH_MAX, socket_path

    shallow = Path("/tmp/state/serving/fraud/haproxy.sock")
    assert socket_path(shallow) == shallow
    deep = Path("/tmp/" + "a-deep-folder/" * 8) / "serving" / "fraud" / "haproxy.sock"
    short = socket_path(deep)
    assert len(str(short)) <= SOCKET_PATH_MAX and short.name.endswith("haproxy.sock")
    assert short == socket_path(deep), "stable: a later process finds the same socket"
    assert short != socket_path(deep.parent.parent / "demand" / "haproxy.sock"), "one per path"
