"""The socket edge: the endpoint moves frames; the session decides what they mean."""
