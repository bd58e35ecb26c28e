"""Clients of services outside StudyBuddy (webhook receivers)."""
