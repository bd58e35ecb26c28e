"""The connection hub: local subscribers per group, bounded queues, non-blocking fan-out."""
