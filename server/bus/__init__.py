"""Cross-node pub/sub: our own small Redis bus, or an in-process twin (see ADR 0005)."""
