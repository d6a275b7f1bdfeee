"""Modules stay small enough to read in one sitting: over 400 lines needs its reason in the
module's docstring (the words "400 lines")."""

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = ("hub", "store", "routes", "fhir_profiles", "adapters")
LIMIT = 400


def test_no_module_is_over_the_limit_without_saying_why() -> None:
    unexplained = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") <= LIMIT:
                continue
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if f"{LIMIT} lines" not in docstring:
                unexplained.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert unexplained == []
