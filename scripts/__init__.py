"""Operational and developer tools, run from the repository root as modules (``python -m scripts.<name>``)."""
