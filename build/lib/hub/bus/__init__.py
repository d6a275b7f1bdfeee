"""The message bus: one interface (``base``), a RabbitMQ implementation and an embedded one."""
