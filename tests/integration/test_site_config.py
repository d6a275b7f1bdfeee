"""Site tables in ``JIANHU_CONFIG_DIR``: read instead of the shipped ones, checked by
``jianhu config check`` and at start-up, where a bad file stops the hub with a line naming the
file and the field."""

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from hub.cli.main import main
from tests.integration.test_first_hour import JIANHU, environment

SHIPPED = Path(__file__).parents[2] / "fhir_profiles" / "data"


def critical_values(tmp_path: Path, change: dict[str, object]) -> Path:
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    table = json.loads((SHIPPED / "lab-critical-values.json").read_text(encoding="utf-8"))
    table.update(change)
    for key in [k for k, v in change.items() if v is None]:
        del table[key]
    (folder / "lab-critical-values.json").write_text(json.dumps(table, ensure_ascii=False))
    return folder


def test_a_usable_folder_is_reported_with_what_it_overrides(tmp_path: Path) -> None:
    folder = critical_values(tmp_path, {"default_band": "adult"})
    result = CliRunner().invoke(main, ["config", "check", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ok: {folder}: lab-critical-values.json"


def test_bad_files_are_named_with_their_field(tmp_path: Path) -> None:
    folder = critical_values(tmp_path, {"alerting": None})  # a required field left out
    (folder / "lab-tat-rules.json").write_text("{not json")
    (folder / "lab-critcal-values.json").write_text("{}")  # misspelt: it would never be read
    result = CliRunner().invoke(main, ["config", "check", str(folder)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"{folder / 'lab-critcal-values.json'}: not a table the hub reads")
    assert lines[1] == f"{folder / 'lab-critical-values.json'}: missing field 'alerting'"
    assert lines[2].startswith(f"{folder / 'lab-tat-rules.json'}: not JSON")
    assert len(lines) == 3


def test_a_bad_folder_stops_the_start(tmp_path: Path) -> None:
    folder = critical_values(tmp_path, {"tests": None})
    env = environment(tmp_path, JIANHU_CONFIG_DIR=str(folder))
    done = subprocess.run([JIANHU, "run"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "invalid site configuration (JIANHU_CONFIG_DIR):",
        f"  {folder / 'lab-critical-values.json'}: missing field 'tests'",
    ]


def test_the_site_table_is_read_instead_of_the_shipped_one(tmp_path: Path) -> None:
    """In a process of its own: tables are read once per process."""
    folder = critical_values(tmp_path, {"lab_flags": ["HH", "LL", "C"]})
    probe = "from hub.lab.critical_rules import load_rules; print(sorted(load_rules().lab_flags))"
    for site, expected in ((str(folder), "['C', 'HH', 'LL']"), ("", None)):
        env = {k: v for k, v in os.environ.items() if k != "JIANHU_CONFIG_DIR"}
        env["JIANHU_CONFIG_DIR"] = site
        done = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        if expected is not None:
            assert done.stdout.strip() == expected
        else:  # the shipped table
            shipped = json.loads((SHIPPED / "lab-critical-values.json").read_text("utf-8"))
            assert done.stdout.strip() == str(sorted(shipped["lab_flags"]))
