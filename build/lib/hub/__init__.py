"""Jianhu (鉴湖): an asynchronous HL7 v2 / FHIR interoperability hub."""

__version__ = "0.1.0"
