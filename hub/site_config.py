"""The tables a site may override in ``JIANHU_CONFIG_DIR`` (see ``hub.base.site_files``), and
the check that a folder of overrides is usable: every file has a known name, is JSON, and reads
into what its part of the hub expects. Run at start-up (a bad file stops it) and by
``jianhu config check``."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from hub.registry import ADAPTERS, FEATURES


def _v2_maps(raw: Any) -> object:
    if not isinstance(raw, dict) or not all(isinstance(v, dict | list) for v in raw.values()):
        raise ValueError("every table is an object (code -> meaning) or a list of codes")
    return raw


# file name -> what reads it (raises on content it cannot use): the core's, and those each
# feature and adapter declares in its plugin
SITE_FILES: dict[str, Callable[[Any], object]] = {"v2-maps.json": _v2_maps}
for _declared in [f.site_files for f in FEATURES] + [a.site_files for a in ADAPTERS]:
    SITE_FILES |= _declared


def problems(folder: Path) -> list[str]:
    """What is wrong with the overrides in ``folder``, one line each naming the file (and the
    field, when the reader names one); empty when every file is usable."""
    if not folder.is_dir():
        return [f"{folder}: no such folder"]
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        read = SITE_FILES.get(path.name)
        if read is None:
            known = ", ".join(sorted(SITE_FILES))
            found.append(f"{path}: not a table the hub reads (it reads {known})")
            continue
        try:
            read(orjson.loads(path.read_bytes()))
        except orjson.JSONDecodeError as exc:
            found.append(f"{path}: not JSON: {exc}")
        except KeyError as exc:
            found.append(f"{path}: missing field {exc}")
        except (ValueError, TypeError, AttributeError) as exc:
            found.append(f"{path}: {type(exc).__name__}: {exc}")
    return found


def overrides(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name in SITE_FILES)
