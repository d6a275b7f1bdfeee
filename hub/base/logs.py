"""JSON log lines, one per lifecycle event, with patient data masked.

Components call ``log_event(log, "acked", queue=..., message_id=...)``; only the CLI calls
``configure_logging``. The formatter masks every field (and the message) through
``hub.base.masking``, so a careless field cannot leak an ID-card number or a phone into the logs.
"""

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from hub.base.correlation import current
from hub.base.masking import mask_fields, mask_text

# Attributes every LogRecord has; anything else on a record came from ``extra`` fields.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


# A log line stays a few KB whatever it carries: a field or message longer than this keeps its
# head and tail (a traceback its last frames, where the cause is).
MAX_FIELD_CHARS, MAX_TRACEBACK_CHARS = 1000, 6000


def log_event(
    logger: logging.Logger,
    event: str,
    level: int = logging.INFO,
    exc_info: bool = False,
    **fields: Any,
) -> None:
    """One fixed-shape line: the event name plus ids and counts, never payloads.
    ``exc_info=True`` (at a supervision boundary) adds the current exception's traceback."""
    if logger.isEnabledFor(level):
        origin = current()  # the message or request this line is written for
        if origin is not None and "correlation_id" not in fields:
            fields["correlation_id"] = origin.correlation
        logger.log(level, event, exc_info=exc_info, extra={"event": event, **fields})


def bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit // 4
    return f"{text[:head]} ...[{len(text) - limit} characters left out]... {text[head - limit :]}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {key: value for key, value in vars(record).items() if key not in _STANDARD}
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_text(bounded(record.getMessage(), MAX_FIELD_CHARS)),
        }
        origin = current()  # a line not written by log_event (a library's) gets it here
        if origin is not None and "correlation_id" not in fields:
            line["correlation_id"] = mask_text(origin.correlation)  # a caller chose it
        for key, value in mask_fields(fields).items():
            line[key] = bounded(value, MAX_FIELD_CHARS) if isinstance(value, str) else value
        if record.exc_info:
            traceback = bounded(self.formatException(record.exc_info), MAX_TRACEBACK_CHARS)
            line["exc"] = mask_text(traceback)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiormq and aio-pika log every reconnect attempt at length; the hub logs its own events.
    logging.getLogger("aiormq").setLevel(max(logging.getLevelName(level), logging.WARNING))
    logging.getLogger("aio_pika").setLevel(max(logging.getLevelName(level), logging.WARNING))
