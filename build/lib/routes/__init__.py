"""The routing table: which messages go to which queue and handler, readable in one place."""
