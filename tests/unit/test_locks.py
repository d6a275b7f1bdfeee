"""requirements-run.lock is what running the hub needs, at the versions requirements.lock pins:
``scripts/run.sh`` installs it, ``scripts/test.sh`` the whole lock."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)")


def pins(name: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / name).read_text().splitlines():
        if match := PIN.match(line):
            found[_normal(match[1])] = match[2]
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_run_lock_is_the_dev_lock_without_the_dev_tools() -> None:
    run, dev = pins("requirements-run.lock"), pins("requirements.lock")
    assert run
    assert {name: dev.get(name) for name in run} == run  # same versions, nothing extra
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, _, version = requirement.partition("==")
        assert run.get(_normal(name.partition("[")[0])) == version, requirement  # no extras
    for tool in project["optional-dependencies"]["dev"]:
        assert _normal(tool.partition("==")[0].partition("[")[0]) not in run, tool
