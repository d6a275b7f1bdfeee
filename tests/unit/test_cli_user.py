"""The CLI names its user in the audit trail, also in a container whose user has no name."""

import getpass
import os

import pytest

from hub.cli.operations import _user


def test_a_user_without_a_name_is_named_by_its_id(monkeypatch: pytest.MonkeyPatch) -> None:
    def nameless() -> str:
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(getpass, "getuser", nameless)
    assert _user() == f"uid-{os.getuid()}"
