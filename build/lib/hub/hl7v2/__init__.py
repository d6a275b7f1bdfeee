"""HL7 v2: a fast tokenizer, MLLP framing, ACKs, the listener and the client."""
