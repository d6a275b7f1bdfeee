"""Outbound adapters: one package per external system (S1-S7, S17, S18), each with a simulator."""
