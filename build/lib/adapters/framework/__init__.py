"""What every outbound adapter is made of: interfaces that build a request from a payload and
classify the answer, a transport that carries it, and the delivery engine that keeps the
ledger (see ``store.ledger``)."""
