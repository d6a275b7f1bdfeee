"""The base every other package of the hub may use and which uses none of them: the one error
tree, the envelope and its ids, logging with masking, task helpers, hospital time, metrics and
the SQLite writer thread. Nothing here imports from ``hub``, ``store``, ``adapters``,
``fhir_profiles`` or ``routes`` outside ``hub.base`` (a test checks it)."""
