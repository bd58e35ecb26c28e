"""Background jobs on taskiq: a Redis stream broker, or in-process in the embedded default."""
