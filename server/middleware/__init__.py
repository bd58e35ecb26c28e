"""Pure ASGI middleware: request context, security headers."""
