"""Features and adapters declare themselves in their own package (``plugin.py``); the
registries list them, and the settings, the routing table, the web app, the runtime's jobs and
``jianhu simulate`` take what they need from there."""

import pytest
from pydantic import BaseModel

from adapters.drg.config import DrgConfig
from adapters.framework.plugin import AdapterPlugin
from adapters.registry import PLUGINS, configured_adapters, configured_jobs, plugin
from hub.bus.routing import Route
from hub.lab.settings import LabSettings, lab_settings
from hub.plugin import FeaturePlugin
from hub.registry import FEATURES
from hub.settings import load_settings, settings_model
from routes.table import default_table


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


def test_each_registered_plugin_brings_its_settings_group(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = settings_model().model_fields
    assert {f.name for f in FEATURES} | {a.name for a in PLUGINS} <= set(fields)
    monkeypatch.setenv("JIANHU_LAB__OPEN_SCREEN", "true")
    monkeypatch.setenv("JIANHU_DRG__BASE_URL", "http://127.0.0.1:9100")
    monkeypatch.setenv("JIANHU_DRG__APP_ID", "A1")
    monkeypatch.setenv("JIANHU_DRG__ORG_CODE", "O1")
    settings = load_settings()
    assert lab_settings(settings) == LabSettings(open_screen=True)
    assert isinstance(settings.section("drg"), DrgConfig)
    with pytest.raises(KeyError, match=r"hub/registry\.py"):
        settings.section("vaccination")  # not registered: no group, and the message says where


def test_each_features_queues_come_from_its_plugin() -> None:
    features = {feature.name: feature for feature in FEATURES}
    assert set(features) == {"lab", "amqp_intake", "destinations", "orders"}
    table = default_table()
    for feature in FEATURES:
        for route in feature.routes:
            assert route in table.routes
            assert table.handlers[route.handler] is feature.handlers[route.handler]
    assert {r.queue for r in features["lab"].routes} == {"lab.fhir", "lab.hl7"}
    (intake,) = features["amqp_intake"].routes
    assert (intake.queue, intake.bindings) == ("intake.amqp", ("hl7v2", "fhir.*"))
    assert intake.plain_messages  # the one queue that takes systems' plain messages
    assert [r.queue for r in table.routes if r.plain_messages] == ["intake.amqp"]


def test_a_new_feature_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a new feature package would declare: its settings group and queue appear without
    a change anywhere else."""

    class VaccinationSettings(BaseModel):
        enabled: bool = True

    feature = FeaturePlugin(
        name="vaccination",
        settings=VaccinationSettings,
        routes=(Route("vaccination.cases", "jianhu.events", ("fhir.Condition.#",), "cases", "x"),),
        handlers={"cases": lambda services: services},
    )
    monkeypatch.setattr("hub.registry.FEATURES", (*FEATURES, feature))
    monkeypatch.setattr("routes.table.FEATURES", (*FEATURES, feature))
    settings_model.cache_clear()
    try:
        monkeypatch.setenv("JIANHU_VACCINATION__ENABLED", "false")
        assert load_settings().section("vaccination") == VaccinationSettings(enabled=False)
        assert "vaccination.cases" in {route.queue for route in default_table().routes}
    finally:
        settings_model.cache_clear()


def test_a_new_adapter_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """An adapter that reports on events: its settings group, its queue and its commands
    appear from its plugin alone."""

    class VaccinationConfig(BaseModel):
        base_url: str

    adapter = AdapterPlugin(
        name="vaccination",
        settings=VaccinationConfig,
        build=lambda config: config,
        routes=(
            Route("vaccination.results", "jianhu.events", ("fhir.Observation.#",), "rep", "x"),
        ),
        handlers={"rep": lambda services: services},
    )
    registered = (*PLUGINS, adapter)
    monkeypatch.setattr("hub.registry.ADAPTERS", registered)
    monkeypatch.setattr("routes.table.ADAPTERS", registered)
    settings_model.cache_clear()
    try:
        assert load_settings().section("vaccination") is None  # not configured: nothing built
        monkeypatch.setenv("JIANHU_VACCINATION__BASE_URL", "https://vaccines.example")
        assert load_settings().section("vaccination") == VaccinationConfig(
            base_url="https://vaccines.example"
        )
        assert "vaccination.results" in {route.queue for route in default_table().routes}
    finally:
        settings_model.cache_clear()


def test_a_plugin_cannot_take_a_handler_name_already_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thief = FeaturePlugin(
        name="thief",
        settings=LabSettings,
        handlers={"hl7v2-normalizer": lambda services: services},
    )
    monkeypatch.setattr("routes.table.FEATURES", (*FEATURES, thief))
    with pytest.raises(ValueError, match="hl7v2-normalizer"):
        default_table()
