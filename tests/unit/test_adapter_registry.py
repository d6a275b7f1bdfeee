"""Adapters declare themselves in their own package (``adapters/<name>/plugin.py``); the
registry lists them and the runtime takes their scheduled work from it."""

from adapters.drg.config import DrgConfig
from adapters.registry import PLUGINS, configured_adapters, configured_jobs, plugin
from hub.settings import load_settings


def test_an_unconfigured_adapter_is_neither_built_nor_scheduled() -> None:
    settings = load_settings(drg=None)
    assert configured_adapters(settings) == {}
    assert configured_jobs(settings) == []


def test_a_configured_adapter_brings_its_jobs() -> None:
    config = DrgConfig(base_url="http://127.0.0.1:9100", app_id="A1", org_code="O1")
    settings = load_settings(drg=config)
    assert set(configured_adapters(settings)) == {"drg"}
    jobs = configured_jobs(settings)
    assert [job.name for job in jobs] == ["drg-discharges", "drg-feedback"]
    assert jobs[0].catch_up  # missed runs of the discharge report are made up after downtime


def test_every_adapter_has_a_unique_name_and_its_simulator_builds() -> None:
    names = [item.name for item in PLUGINS]
    assert len(names) == len(set(names))
    simulator = plugin("drg").simulator
    assert simulator is not None
    app = simulator("A1", "O1")
    assert any(route.method == "POST" for route in app.router.routes())
