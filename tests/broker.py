"""Finds a RabbitMQ broker for the integration tests.

Order: ``JIANHU_TEST_AMQP_URL``; Docker through testcontainers when a Docker engine answers;
the repository's ``scripts/rabbitmq-local.sh`` (installs and starts a private node).
With ``CI=true`` a broker that cannot be found fails the run instead of skipping it.
"""

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCAL_SCRIPT = REPO / "scripts" / "rabbitmq-local.sh"


@dataclass
class Broker:
    url: str
    origin: str
    restart: Callable[[], None] | None = None  # stop and start the node, keeping its data
    stop: Callable[[], None] | None = None  # called at the end of the session, if we started it


def _local_script(*args: str, rmq_dir: str) -> str:
    env = os.environ | {"RMQ_DIR": rmq_dir}
    done = subprocess.run(
        ["bash", str(LOCAL_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=240
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmq-local.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _local_action(action: str, rmq_dir: str) -> Callable[[], None]:
    def run() -> None:
        _local_script(action, rmq_dir=rmq_dir)

    return run


def from_environment() -> Broker | None:
    url = os.environ.get("JIANHU_TEST_AMQP_URL")
    if not url:
        return None
    rmq_dir = os.environ.get("RMQ_DIR")
    restart = _local_action("restart-node", rmq_dir) if rmq_dir else None
    return Broker(url, "JIANHU_TEST_AMQP_URL", restart=restart)


def from_docker() -> Broker | None:
    try:
        import docker  # type: ignore[import-untyped]
        from testcontainers.community.rabbitmq import RabbitMqContainer

        docker.from_env().ping()
    except Exception:  # no Docker engine here: fall through to the local script
        return None
    container = RabbitMqContainer("rabbitmq:3.13-management")
    container.start()
    host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
    return Broker(f"amqp://guest:guest@{host}:{port}/", "docker", stop=container.stop)


def from_local_script() -> Broker:
    rmq_dir = str(REPO / ".run" / "rabbitmq-test")
    url = _local_script("start", rmq_dir=rmq_dir)
    return Broker(
        url,
        "scripts/rabbitmq-local.sh",
        restart=_local_action("restart-node", rmq_dir),
        stop=_local_action("stop", rmq_dir),
    )


def find_broker() -> Broker:
    return from_environment() or from_docker() or from_local_script()
