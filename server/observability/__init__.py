"""Logging, metrics and error reporting."""
