"""What a new user meets in the first hour of ``jianhu``, each as one clear line: the version,
where the hub listens and what it uses, no credentials configured, a port already taken, a
setting that is not JSON, a command run from a folder without hub data, and a request URL that
is not percent-encoded (an OperationOutcome, a WARNING without the request in it)."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from hub.cli.main import main
from tests.integration.test_run_process import free_port

JIANHU = Path(sys.executable).with_name("jianhu")
ROOT = Path(__file__).parents[2]


def environment(tmp_path: Path, **more: str) -> dict[str, str]:
    base = {name: value for name, value in os.environ.items() if not name.startswith("JIANHU_")}
    return (
        base
        | {
            "JIANHU_DATA_DIR": str(tmp_path / "data"),
            "JIANHU_HTTP_HOST": "127.0.0.1",
            "JIANHU_HTTP_PORT": str(free_port()),
            "JIANHU_MLLP_PORT": str(free_port()),
        }
        | more
    )


def test_the_version_is_printed() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("jianhu, version ")


def test_a_setting_that_is_not_json_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    env = environment(tmp_path, JIANHU_HL7__LISTENERS='[{"port": 2575')
    done = subprocess.run([JIANHU, "run"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "invalid configuration:"
    assert lines[1].startswith("  JIANHU_HL7__LISTENERS: not valid JSON")
    assert len(lines) == 2


def test_a_port_in_use_is_one_line_with_the_address(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = environment(tmp_path, JIANHU_MLLP_PORT=str(port))
        done = subprocess.run([JIANHU, "run"], env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    plain = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert plain == [
        f"error: cannot listen on 127.0.0.1:{port}: address already in use; set "
        "JIANHU_HTTP_PORT, JIANHU_MLLP_PORT or JIANHU_HTTP_HOST"
    ]


def test_a_command_in_a_folder_without_hub_data_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("JIANHU_")]:
        monkeypatch.delenv(name)
    result = CliRunner().invoke(main, ["messages", "list"])
    assert result.exit_code == 2
    assert f"no hub data in {tmp_path / 'data'}" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_start_says_where_it_listens_warns_without_credentials_and_answers_json(
    tmp_path: Path,
) -> None:
    env = environment(tmp_path)
    hub = subprocess.Popen([JIANHU, "run"], env=env, stderr=subprocess.PIPE, text=True)
    assert hub.stderr is not None
    seen: list[str] = []
    try:
        while not any(" listening: " in line for line in seen):  # printed once it listens
            line = hub.stderr.readline()
            assert line, "the hub ended before it listened: " + "".join(seen)
            seen.append(line)
        status, headers, body = raw_get(
            int(env["JIANHU_HTTP_PORT"]), "/fhir/Patient?name=张三".encode()
        )  # raw UTF-8 in the request line, as curl sends it; a browser would encode it
        assert status == 400
        assert headers["content-type"].startswith("application/fhir+json")
        outcome = orjson.loads(body)
        assert outcome["resourceType"] == "OperationOutcome"
        assert "percent-encode" in outcome["issue"][0]["diagnostics"]
        deadline = time.monotonic() + 10
        while not any("request_refused" in line for line in seen):
            assert time.monotonic() < deadline
            seen.append(hub.stderr.readline())
    finally:
        hub.send_signal(signal.SIGTERM)
        _, rest = hub.communicate(timeout=30)
    data = tmp_path / "data"
    started = next(line for line in seen if " listening: " in line)
    assert started.strip() == (
        f"jianhu {_version()} listening: HTTP http://127.0.0.1:{env['JIANHU_HTTP_PORT']} "
        f"(FHIR at /fhir), MLLP 127.0.0.1:{env['JIANHU_MLLP_PORT']}; store SQLite "
        f"({data / 'jianhu.sqlite3'}); bus embedded ({data / 'bus.sqlite3'})"
    )
    records = [orjson.loads(line) for line in [*seen, *rest.splitlines()] if line.startswith("{")]
    warnings = {r["event"]: r for r in records if r["level"] == "warning"}
    assert "no_credentials" in warnings
    refused_line = warnings["request_refused"]
    assert refused_line["reason"] == "Invalid char in url query"
    assert "exc" not in refused_line  # no traceback: the client was at fault
    assert not any("张三" in line or "\\xe5\\xbc\\xa0" in line for line in seen)
    assert not any(r["level"] == "error" for r in records)


def raw_get(port: int, target: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: hub\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):  # the hub closes after a refused request
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), headers, body


def _version() -> str:
    from importlib.metadata import version

    return version("jianhu")


def test_the_readme_walk_follows_a_message_end_to_end(tmp_path: Path) -> None:
    """Steps 1, 3 and 4 of "Five minutes with the hub", as a new user types them: the hub
    started with example keys, the example result sent over HTTP, the id from the answer's
    header, ``jianhu messages list`` and ``jianhu trace`` from the same folder."""
    env = environment(tmp_path, JIANHU_API_KEYS="lis-key:system,ops-key:ops")
    hub = subprocess.Popen([JIANHU, "run"], env=env, stderr=subprocess.PIPE, text=True)
    assert hub.stderr is not None
    try:
        while " listening: " not in (line := hub.stderr.readline()):
            assert line, "the hub ended before it listened"
        sent = urllib.request.Request(
            f"http://127.0.0.1:{env['JIANHU_HTTP_PORT']}/hl7v2",
            data=(ROOT / "docs" / "examples" / "oru-r01-cbc.hl7").read_bytes(),
            headers={"Authorization": "Bearer lis-key", "Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(sent, timeout=10) as answer:
            message_id = answer.headers["X-Correlation-ID"]
            assert "MSA|AA|" in answer.read().decode()
        deadline = time.monotonic() + 20
        while '"stored"' not in jianhu(env, "messages", "list", "--type", "ORU^R01").stdout:
            assert time.monotonic() < deadline, "the message was not stored"
        done = jianhu(env, "trace", message_id)
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.communicate(timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"archived   {message_id}  status stored" in done.stdout
    assert "  created" in done.stdout
    assert "event      fhir.Observation.created" in done.stdout


def jianhu(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JIANHU, *args], env=env, capture_output=True, text=True, timeout=60)
