"""The one name for a JSON object as the hub handles it (a FHIR resource, a message's fields,
a screen event): parsed by orjson, keys are text, values anything JSON holds."""

from typing import Any

Json = dict[str, Any]
