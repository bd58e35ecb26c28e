"""REST edge: parse, authorise, call a service, serialise. Thin by design."""
