"""StudyBuddy server: REST API, WebSocket hub and background jobs."""
