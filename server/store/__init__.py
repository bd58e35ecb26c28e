"""Persistence: SQLAlchemy models, the engine, and repositories (queries, never commits)."""
