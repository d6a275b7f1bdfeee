"""The dependency rule of ``docs/architecture.md``, read from the imports of every module.

Layers, lowest first; a module imports only from its own part or from parts below it:
0. base: ``hub.base`` (errors, envelope, logs and masking, tasks, hospital time, metrics, the
   SQLite writer thread);
1. the bus (``hub.bus``), the store (``store``) and the canonical model (``fhir_profiles`` and
   the v2 model: ``hub.hl7v2.message``, ``hub.hl7v2.datatypes``, ``hub.hl7v2.mapping``). Of
   these, only the store and the v2 model use ``fhir_profiles`` (the search parameters it
   indexes by, the code tables a mapping codes with); none uses another otherwise;
2. ingest and normalization (the rest of ``hub.hl7v2``), the FHIR API (``hub.fhir``), the
   features (``hub.lab``, ``hub.subscriptions``, the event relay, the scheduler) and
   ``adapters``;
3. the composition root: ``hub.runtime``, ``hub.settings``, ``hub.cli``, ``hub.web``,
   ``routes``, the registries (``hub.registry``, ``adapters.registry``) and each feature's or
   adapter's ``plugin`` module (``hub.lab.plugin``, ``adapters.drg.plugin``: its piece of the
   root, naming its web handlers), the only modules that know everything.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = ("hub", "store", "routes", "fhir_profiles", "adapters")
V2_MODEL = ("message", "datatypes", "mapping")
LAYERS = {
    "base": 0,
    "bus": 1,
    "store": 1,
    "model": 1,
    "v2-model": 1,
    "services": 2,
    "root": 3,
}
# within layer 1, who may use whom
ALLOWED_SIDEWAYS = {("store", "model"), ("v2-model", "model")}
ROOT_MODULES = (
    "hub.runtime",
    "hub.settings",
    "hub.site_config",
    "hub.cli",
    "hub.web",
    "routes",
    "adapters.registry",
    "hub.registry",
)
# the modules that define what a plugin declares are ordinary modules of their layer
PLUGIN_TYPES = ("hub.plugin", "adapters.framework.plugin")


def part_of(module: str) -> str | None:
    names = module.split(".")
    if names[0] not in PACKAGES:
        return None
    if module == "hub" or module.startswith("hub.base"):
        return "base"
    if any(module == root or module.startswith(root + ".") for root in ROOT_MODULES):
        return "root"
    if names[-1] == "plugin" and module not in PLUGIN_TYPES:
        return "root"
    if module.startswith("hub.bus"):
        return "bus"
    if names[0] == "store":
        return "store"
    if names[0] == "fhir_profiles":
        return "model"
    if len(names) > 2 and names[:2] == ["hub", "hl7v2"] and names[2] in V2_MODEL:
        return "v2-model"
    return "services"


def imports_of(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from hub import subscriptions`` imports the module hub.subscriptions
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def allowed(source: str, target: str) -> bool:
    if source == target or target == "base":
        return True
    if source == "base":
        return False
    if LAYERS[target] < LAYERS[source]:
        return source != "v2-model" or target != "bus"
    return LAYERS[target] == LAYERS[source] and (
        LAYERS[source] != 1 or (source, target) in ALLOWED_SIDEWAYS
    )


def test_every_import_follows_the_dependency_rule() -> None:
    broken, checked = [], 0
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source_module = module_of(path)
            source = part_of(source_module)
            assert source is not None
            for imported in imports_of(path):
                target = part_of(imported)
                checked += target is not None
                if target is not None and not allowed(source, target):
                    broken.append(f"{source_module} ({source}) imports {imported} ({target})")
    assert checked > 500  # the imports were found at all
    assert broken == []


def test_the_rule_is_checked_at_all() -> None:
    """The checker itself: an upward import is caught, a downward one is not."""
    assert not allowed("store", "services")
    assert not allowed("base", "store")
    assert not allowed("bus", "store")
    assert not allowed("model", "store")
    assert not allowed("services", "root")
    assert allowed("services", "store")
    assert allowed("store", "model")
    assert allowed("root", "services")
    assert part_of("hub.hl7v2.mapping.results") == "v2-model"
    assert part_of("hub.hl7v2.normalizer") == "services"
    assert part_of("adapters.registry") == "root"
    assert part_of("hub.lab.plugin") == "root"
    assert part_of("hub.plugin") == "services"
