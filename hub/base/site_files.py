"""Site configuration: tables a hospital changes without editing the installed package.

``JIANHU_CONFIG_DIR`` names a folder; a file there with the name of a shipped table (the v2
mapping tables, the lab's rules and critical limits, an adapter's field table) is read instead
of the shipped one, which stays the default. What the files may hold is checked at start-up
and by ``jianhu config check`` (``hub/site_config.py``)."""

import json
import os
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

ENV = "JIANHU_CONFIG_DIR"
_chosen: list[Path | None] = []  # set once by the composition root from the settings


def use(folder: Path | None) -> None:
    """The folder the settings name (``JIANHU_CONFIG_DIR``); tables are read once per process,
    so this is called before the hub starts."""
    _chosen[:] = [folder]


def site_dir() -> Path | None:
    if _chosen:
        return _chosen[0]
    folder = os.environ.get(ENV, "").strip()
    return Path(folder) if folder else None


def site_path(relative: str) -> Path | None:
    """The site's copy of a shipped file (found by its name), when there is one."""
    folder = site_dir()
    if folder is None:
        return None
    candidate = folder / PurePosixPath(relative).name
    return candidate if candidate.is_file() else None


def read_json(package: str, relative: str) -> Any:
    """The site's copy when ``JIANHU_CONFIG_DIR`` has one, else the file shipped in
    ``package`` at ``relative``."""
    override = site_path(relative)
    if override is not None:
        return json.loads(override.read_text(encoding="utf-8"))
    return json.loads((resources.files(package) / relative).read_text(encoding="utf-8"))
