"""The realtime broker: the message log, the persister, bus envelopes, leases and presence."""
