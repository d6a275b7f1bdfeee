"""The hub's HTTP side: health, metrics and the ops API (the FHIR API joins it under /fhir)."""
