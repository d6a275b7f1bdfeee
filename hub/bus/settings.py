"""The bus's settings (``JIANHU_BUS__*``): the same numbers apply to RabbitMQ and the embedded
bus."""

from typing import Literal

from pydantic import BaseModel, Field, field_validator


class BusSettings(BaseModel):
    """Message-bus behaviour; the same numbers apply to RabbitMQ and the embedded bus."""

    retry_delays_s: tuple[float, ...] = (5.0, 30.0, 300.0, 1800.0)
    delivery_limit: int = Field(20, ge=1, description="broker-side cap on redeliveries")
    prefetch: int = Field(200, ge=1, le=65535)
    publish_window: int = Field(256, ge=1, description="confirms in flight in a batch publish")
    handler_timeout_s: float = Field(300.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    reconnect_interval_s: float = Field(1.0, gt=0)
    # SQLite durability of the embedded bus: FULL survives power loss, NORMAL only a process crash.
    embedded_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    @field_validator("retry_delays_s")
    @classmethod
    def _delays_positive(cls, delays: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay <= 0 for delay in delays):
            raise ValueError("every retry delay must be positive")
        return delays
