"""The FHIR API's settings (``JIANHU_FHIR__*``)."""

from pydantic import BaseModel, Field


class FhirSettings(BaseModel):
    """The FHIR API: its public base URL (behind a proxy) and request limits."""

    base_url: str = ""  # empty: taken from each request's scheme and host
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="larger bodies get 413")
    validate_input: bool = True  # validate every resource a client writes
    # a search's query string (or _search form body): longer ones get 414; POST _search exists
    # for long criteria, and even those stay far below what a query plan can take
    max_query_bytes: int = Field(16 * 1024, ge=1024)
    max_bundle_entries: int = Field(1000, ge=1, le=10_000)
    # what one request may cost: the answer's size and the time it runs (a batch of searches
    # with _include can otherwise fill memory and hold the event loop); over either: 413
    max_response_bytes: int = Field(32 * 1024 * 1024, ge=64 * 1024)
    max_request_s: float = Field(30.0, gt=0)
