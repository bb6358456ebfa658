"""Remote configuration end to end on a real Mosquitto: the hub pushes, a running receiver applies
and acknowledges, bad configurations are rejected and reported, the last good one survives."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import Client, MQTTMessage
from sqlalchemy.orm import Session, sessionmaker

from edge_configs import PRESS, make_config, reencode
from maintainpro.iot.connectors.mqtt import MqttOptions
from maintainpro.iot.edge.channel import ack_topic, config_topic
from maintainpro.iot.edge.config import EdgeConfig, decode_config, encode_config
from maintainpro.iot.edge.publisher import (
    ConfigAckListener,
    PublishError,
    publish_config,
    push_config,
)
from maintainpro.iot.edge.remote import STATE_FILE, ConfigReceiver
from maintainpro.iot.edge_agents import EdgeAgent
from maintainpro.iot.registry import DeviceSpec
from mosquitto import Mosquitto, broker_config, connect_publisher, free_port, unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A Mosquitto of this module's own (retained messages kept in memory)."""
    directory = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    config = broker_config(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    instance = Mosquitto(directory, config, (port,))
    instance.start()
    yield instance
    instance.stop()


def options(broker: Mosquitto, prefix: str) -> MqttOptions:
    """Client options on the test broker with a client id nobody else uses."""
    return MqttOptions(port=broker.port, client_id=unique(prefix), reconnect_first_s=0.2)


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll until check() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class FakeAgent:
    """Records every configuration it is told to run; can be told to fail."""

    def __init__(self) -> None:
        self.applied: list[EdgeConfig] = []
        self.fail_on: Callable[[EdgeConfig], bool] = lambda config: False

    def apply(self, config: EdgeConfig) -> None:
        if self.fail_on(config):
            raise RuntimeError("the Modbus port is in use")
        self.applied.append(config)

    @property
    def versions(self) -> list[int]:
        return [c.version for c in self.applied]


class AckSpy:
    """Collects the acks an agent publishes."""

    def __init__(self, port: int, agent_key: str) -> None:
        self.acks: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.client = connect_publisher(port)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self.ready.set()
        self.client.subscribe(ack_topic(agent_key), qos=1)
        assert self.ready.wait(5)

    def _on_message(self, client: Client, userdata: object, message: MQTTMessage) -> None:
        self.acks.append(json.loads(message.payload))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_raw(port: int, agent_key: str, payload: bytes) -> None:
    """Publish anything retained on the agent's config topic, as a broken hub or broker would."""
    client = connect_publisher(port)
    try:
        client.publish(config_topic(agent_key), payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def stored(factory: sessionmaker[Session], key: str) -> EdgeAgent:
    """The agent's row as committed now."""
    with factory() as session:
        agent = session.query(EdgeAgent).filter_by(key=key).one()
        session.expunge(agent)
        return agent


def test_pushed_configuration_is_applied_and_bad_ones_are_rejected_and_reported(
    broker: Mosquitto, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    key = unique("edge")
    with session_factory() as session, session.begin():
        session.add(EdgeAgent(key=key, name="Line 1 gateway", config={}, config_version=0))
    listener = ConfigAckListener(session_factory, options(broker, "hub"))
    hub_client = listener.start()
    agent = FakeAgent()
    receiver = ConfigReceiver(options(broker, "agent"), key, agent.apply, tmp_path / "state")
    try:
        assert listener.subscribed.wait(5)
        receiver.start()
        assert receiver.subscribed.wait(5)

        # 1. The hub pushes; the running receiver applies it and the hub shows it applied.
        press = DeviceSpec.model_validate(PRESS)
        with session_factory() as session:
            version = push_config(session, key, [press], options(broker, "hub-push"))
        assert version == 1
        wait_for(lambda: agent.versions == [1], what="the agent to apply version 1")
        assert agent.applied[0].devices[0].sensors[1].key == "pressure"
        wait_for(lambda: stored(session_factory, key).applied_version == 1, what="applied ack")
        assert stored(session_factory, key).config_error is None
        assert (tmp_path / "state" / STATE_FILE).exists()

        # 2. Malformed configurations: each rejected, reported, and version 1 keeps running.
        good = json.loads(encode_config(make_config(2, agent=key)))
        bad_endpoint = json.loads(json.dumps(good))
        bad_endpoint["devices"][0]["endpoint"] = "http://10.0.0.5"
        duplicate = json.loads(json.dumps(good))
        duplicate["devices"][0]["sensors"][1]["key"] = "oil-temp"
        corrupt = encode_config(make_config(2, agent=key)).replace(b"10.0.0.5", b"10.6.6.6")
        cases = [
            (reencode(bad_endpoint), "version 2: invalid configuration: devices.0.endpoint"),
            (reencode(duplicate), "sensor keys must be unique"),
            (b"{garbage", "unreadable version: not valid JSON"),
            (corrupt, "version 2: sha256: digest mismatch"),
        ]
        for payload, error in cases:
            publish_raw(broker.port, key, payload)
            wait_for(
                lambda error=error: error in (stored(session_factory, key).config_error or ""),
                what=f"the hub to show {error!r}",
            )
            row = stored(session_factory, key)
            assert row.applied_version == 1
            assert row.config_error_at is not None
            assert row.config_error_at.tzinfo is not None
            assert receiver.applied_version == 1
            assert agent.versions == [1], "nothing else was applied"
        assert decode_config((tmp_path / "state" / STATE_FILE).read_bytes()).version == 1

        # 3. An apply that fails is rejected; the last good configuration is applied again.
        agent.fail_on = lambda config: config.version == 2
        with session_factory() as session:
            assert push_config(session, key, [press], options(broker, "hub-push")) == 2
        wait_for(
            lambda: (
                "version 2: not applied: RuntimeError: the Modbus port is in use"
                in (stored(session_factory, key).config_error or "")
            ),
            what="the apply failure to reach the hub",
        )
        assert agent.versions == [1, 1], "version 1 restored after the failed apply"

        # 4. A good newer version clears the error.
        agent.fail_on = lambda config: False
        with session_factory() as session:
            assert push_config(session, key, [], options(broker, "hub-push")) == 3
        wait_for(lambda: stored(session_factory, key).applied_version == 3, what="version 3")
        row = stored(session_factory, key)
        assert row.config_error is None
        assert row.config_error_at is None
        assert agent.versions == [1, 1, 3]
        assert agent.applied[-1].devices == []
    finally:
        receiver.stop()
        listener.stop(hub_client)


def test_a_restarted_receiver_starts_from_the_last_good_configuration(
    broker: Mosquitto, tmp_path: Path
) -> None:
    key = unique("edge")
    state = tmp_path / "state"
    first = FakeAgent()
    hub = options(broker, "hub-push")
    publish_config(hub, key, encode_config(make_config(4, agent=key)))
    with ConfigReceiver(options(broker, "agent"), key, first.apply, state) as receiver:
        wait_for(lambda: first.versions == [4], what="version 4")
        assert receiver.last_outcome is not None
        assert receiver.last_outcome.action == "applied"

    # The hub and broker are away (nothing listens on this port): the agent still runs v4.
    again = FakeAgent()
    away = MqttOptions(port=free_port(), client_id=unique("agent"))
    with ConfigReceiver(away, key, again.apply, state) as restarted:
        assert again.versions == [4]
        assert restarted.applied_version == 4
        assert restarted.current is not None
        assert restarted.current.devices[0].key == "press-1"

    # A corrupt state file is ignored rather than keeping the agent from starting.
    (state / STATE_FILE).write_bytes(b"{half a fi")
    third = FakeAgent()
    with ConfigReceiver(away, key, third.apply, state) as broken:
        assert broken.applied_version == 0
        assert third.versions == []


def test_a_retained_older_version_is_ignored_and_the_same_one_reacknowledged(
    broker: Mosquitto, tmp_path: Path
) -> None:
    key = unique("edge")
    state = tmp_path / "state"
    first = FakeAgent()
    hub = options(broker, "hub-push")
    publish_config(hub, key, encode_config(make_config(5, agent=key)))
    with ConfigReceiver(options(broker, "agent"), key, first.apply, state):
        wait_for(lambda: first.versions == [5], what="version 5")

    # The broker now retains an older version (e.g. restored from an old backup).
    publish_config(hub, key, encode_config(make_config(4, agent=key)))
    spy = AckSpy(broker.port, key)
    second = FakeAgent()
    try:
        with ConfigReceiver(options(broker, "agent"), key, second.apply, state) as receiver:
            wait_for(lambda: receiver.last_outcome is not None, what="the retained message")
            assert receiver.last_outcome is not None
            assert receiver.last_outcome.action == "ignored"
            assert second.versions == [5], "only the persisted configuration, v4 not applied"
            # The same version again is acknowledged again (repairs an ack the hub missed).
            publish_config(hub, key, encode_config(make_config(5, agent=key)))
            wait_for(lambda: spy.acks, what="the re-acknowledgement")
            assert spy.acks == [{"version": 5, "status": "applied", "error": None}]
            assert second.versions == [5], "not applied twice"
    finally:
        spy.close()


def test_another_agents_configuration_is_rejected(broker: Mosquitto, tmp_path: Path) -> None:
    key = unique("edge")
    spy = AckSpy(broker.port, key)
    agent = FakeAgent()
    try:
        with ConfigReceiver(options(broker, "agent"), key, agent.apply, tmp_path) as receiver:
            assert receiver.subscribed.wait(5)
            publish_raw(broker.port, key, encode_config(make_config(1, agent="someone-else")))
            wait_for(lambda: spy.acks, what="the rejection")
        assert spy.acks[0]["status"] == "rejected"
        assert "for agent 'someone-else'" in spy.acks[0]["error"]
        assert agent.versions == []
    finally:
        spy.close()


def test_publishing_to_an_unreachable_broker_fails_clearly() -> None:
    away = MqttOptions(port=free_port(), client_id=unique("hub"))
    with pytest.raises(PublishError, match=r"cannot publish to 127\.0\.0\.1"):
        publish_config(away, "edge-x", encode_config(make_config()), timeout=2)


def test_the_real_edge_agent_takes_a_pushed_configuration(
    broker: Mosquitto, tmp_path: Path
) -> None:
    # Imported here: the agent is built in parallel, and its import must not break this module.
    from maintainpro.iot.edge.agent import EdgeAgent as Agent
    from maintainpro.iot.edge.settings import AgentSettings, QueueSettings, UplinkSettings

    key = unique("edge")
    settings = AgentSettings(
        agent=key,
        uplink=UplinkSettings(url=f"mqtt://127.0.0.1:{broker.port}"),
        queue=QueueSettings(path=tmp_path / "queue.db"),
    )
    agent = Agent(settings)
    receiver = ConfigReceiver(
        options(broker, "agent"),
        key,
        lambda config: agent.apply_devices(list(config.devices)),
        tmp_path / "state",
    )
    try:
        with receiver:
            assert receiver.subscribed.wait(5)
            hub = options(broker, "hub-push")
            publish_config(hub, key, encode_config(make_config(1, agent=key)))
            wait_for(lambda: "press-1" in agent.states, what="the agent to take press-1")
            broken = json.loads(encode_config(make_config(2, agent=key, devices=[])))
            broken["devices"] = [{"key": "x", "protocol": "modbus"}]
            publish_config(hub, key, reencode(broken))
            wait_for(
                lambda: (
                    receiver.last_outcome is not None and receiver.last_outcome.action == "rejected"
                ),
                what="the rejection",
            )
            assert list(agent.states) == ["press-1"], "still serving the last good devices"
    finally:
        agent.queue.close()
