"""The FHIR R4 REST layer, independent of HTTP: interactions, search Bundles, transactions."""
