"""The canonical model: Chinese identifier and code systems, profile checks, v2-to-FHIR maps."""
