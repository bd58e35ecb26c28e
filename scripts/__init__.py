"""Operational and developer tools, run from the repository root as modules."""
