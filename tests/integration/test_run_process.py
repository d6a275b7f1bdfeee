"""``jianhu run`` as the README starts it: embedded defaults, ready over HTTP, stops on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_serves_and_stops_gracefully(tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {
        "JIANHU_DATA_DIR": str(tmp_path),
        "JIANHU_HTTP_PORT": str(port),
        "JIANHU_HTTP_HOST": "127.0.0.1",
        "JIANHU_AMQP_URL": "",
        "JIANHU_MONGO_URL": "",
        "JIANHU_API_KEYS": "ops-key:ops",
    }
    jianhu = Path(sys.executable).with_name("jianhu")
    hub = subprocess.Popen([str(jianhu), "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    assert orjson.loads(r.read())["status"] == "ready"
                    break
            except OSError:
                assert hub.poll() is None, hub.stderr.read() if hub.stderr else ""
                assert time.monotonic() < deadline, "the hub did not become ready"
                time.sleep(0.1)
        hub.send_signal(signal.SIGTERM)
        _, stderr = hub.communicate(timeout=30)
    finally:
        if hub.poll() is None:
            hub.kill()
    assert hub.returncode == 0
    events = [orjson.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert events[:2] == ["lab_rebuilt", "started"]  # the lab's memory before its first message
    assert events[-2:] == ["stopping", "stopped"]
    assert (tmp_path / "bus.sqlite3").exists()
    assert (tmp_path / "jianhu.sqlite3").exists()
