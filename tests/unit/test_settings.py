from pathlib import Path

import pytest

from hub.base.errors import ConfigurationError
from hub.settings import Role, load_settings


def test_defaults_are_the_embedded_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "JIANHU_HTTP_PORT",
        "JIANHU_MLLP_PORT",
        "JIANHU_AMQP_URL",
        "JIANHU_MONGO_URL",
        "JIANHU_API_KEYS",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.http_port, settings.mllp_port) == (8080, 2575)
    assert settings.uses_embedded_bus
    assert settings.bus.retry_delays_s == (5.0, 30.0, 300.0, 1800.0)


def test_api_keys_parse_into_roles_and_stay_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIANHU_API_KEYS", "s3cret:admin, wall:screen")
    settings = load_settings()
    assert [k.role for k in settings.api_keys] == [Role.ADMIN, Role.SCREEN]
    assert "s3cret" not in repr(settings)
    assert settings.api_keys[0].key.get_secret_value() == "s3cret"


def test_every_configuration_error_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIANHU_HTTP_PORT", "eighty")
    monkeypatch.setenv("JIANHU_API_KEYS", "k:robot")
    monkeypatch.setenv("JIANHU_BUS__PREFETCH", "0")
    monkeypatch.setenv("JIANHU_BUS__RETRY_DELAYS_S", "[5, -1]")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    for variable in (
        "JIANHU_HTTP_PORT",
        "JIANHU_API_KEYS",
        "JIANHU_BUS__PREFETCH",
        "JIANHU_BUS__RETRY_DELAYS_S",
    ):
        assert variable in message
    assert "unknown role 'robot'" in message


def test_secrets_can_come_from_a_secrets_directory(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    (tmp_path / "jianhu_amqp_url").write_text("amqp://hub:pw@mq:5672/")
    monkeypatch.delenv("JIANHU_AMQP_URL", raising=False)
    monkeypatch.setenv("JIANHU_SECRETS_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.amqp_url.get_secret_value() == "amqp://hub:pw@mq:5672/"
    assert not settings.uses_embedded_bus


def test_consume_names_the_queues_a_process_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().consumes("hl7v2.normalizer")
    monkeypatch.setenv("JIANHU_CONSUME", "none")
    assert not load_settings().consumes("hl7v2.normalizer")
    monkeypatch.setenv("JIANHU_CONSUME", "hl7v2.normalizer, fhir.subscriptions")
    chosen = load_settings()
    assert chosen.consumes("fhir.subscriptions")
    assert not chosen.consumes("fhir.subscription-delivery")
