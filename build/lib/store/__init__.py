"""The clinical store behind one interface: FHIR resources, the message archive, the ledger."""
