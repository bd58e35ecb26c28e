"""The new endpoints are documented in /openapi.json, the frame in /asyncapi.json."""

from __future__ import annotations

import httpx

NEW = {
    ("post", "/api/v1/auth/email/verify"),
    ("post", "/api/v1/auth/email/resend"),
    ("post", "/api/v1/auth/password/forgot"),
    ("post", "/api/v1/auth/password/reset"),
    ("get", "/api/v1/notifications"),
    ("post", "/api/v1/notifications/{notification_id}/read"),
    ("post", "/api/v1/notifications/read-all"),
    ("get", "/api/v1/users/me/notification-settings"),
    ("put", "/api/v1/users/me/notification-settings"),
}


def _examples(schema: object) -> int:
    """How many ``examples`` a (nested) schema holds."""
    if isinstance(schema, dict):
        return ("examples" in schema) + sum(_examples(value) for value in schema.values())
    if isinstance(schema, list):
        return sum(_examples(value) for value in schema)
    return 0


async def test_every_new_endpoint_is_in_openapi_with_examples(client: httpx.AsyncClient) -> None:
    """Each operation is listed; each request body has examples; forgot/reset are rate-limited."""
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for method, path in NEW:
        operation = document["paths"][path][method]
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if body:
            name = body["schema"]["$ref"].rsplit("/", 1)[1]
            referenced = [schemas[name], *(schemas[n] for n in schemas if n in str(schemas[name]))]
            assert _examples(referenced) > 0, path
    forgot = document["paths"]["/api/v1/auth/password/forgot"]["post"]
    assert "202" in forgot["responses"] and "429" in forgot["responses"]
    assert "filter[unread]" in str(document["paths"]["/api/v1/notifications"]["get"])
    assert "email_verified" in schemas["UserPrivate"]["properties"]


async def test_the_notification_frame_is_in_asyncapi(client: httpx.AsyncClient) -> None:
    """``notification {notification}`` is a server message with the notification's schema."""
    document = (await client.get("/asyncapi.json")).json()
    message = document["components"]["messages"]["server.notification"]
    assert message["name"] == "notification"
    schema = document["components"]["schemas"]["NotificationNotice"]
    assert "notification" in schema["properties"]
    assert {"id", "kind", "group_id", "data", "read_at", "created_at"} <= set(
        document["components"]["schemas"]["Notification"]["properties"]
    )


async def test_the_job_and_email_metrics_are_exposed(client: httpx.AsyncClient) -> None:
    """The issue's series are registered; the dead-letter gauge has a value after a scrape."""
    text = (await client.get("/health/metrics")).text
    for name in (
        "studybuddy_emails_sent_total",
        "studybuddy_notifications_total",
        "studybuddy_task_runs_total",
        "studybuddy_task_duration_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert "\nstudybuddy_dead_letters " in text
