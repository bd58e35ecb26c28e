"""The Postman collection and environment of the API, generated from its OpenAPI document.

``python -m scripts.postman`` writes ``clients/postman/studybuddy.postman_collection.json`` and
``studybuddy.postman_environment.json`` from the document the server serves at
``/openapi.json`` (built here in process, the same function); ``--check`` only compares, and
``tests/unit/test_postman.py`` fails when the files are stale. Never edit them by hand.

What the collection holds:

- one folder per tag of the document, in its order, and one request per operation with the
  document's example body and its example answers (Postman "examples"); deletions and signing
  out are in a last folder, so that running the whole collection leaves what it made usable
  until the end;
- path parameters are collection variables (``{{group_id}}``...), set from the ``id`` of
  whatever a request creates (the document's links say which);
- a collection-level pre-request script that signs in with the environment's ``email`` and
  ``password`` when a request needs a token, and refreshes the token before it expires
  (``POST /auth/refresh`` with the refresh cookie, echoing the ``csrf_token`` cookie as
  ``X-CSRF-Token``);
- tests on every request: a documented status, the contract's envelope, ``X-Request-ID``;
  with the environment's ``expectFlow`` set (as ``make postman`` does), the status that a run
  of the whole collection against a fresh node must get.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "clients" / "postman"
COLLECTION = FOLDER / "studybuddy.postman_collection.json"
ENVIRONMENT = FOLDER / "studybuddy.postman_environment.json"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
NAMESPACE = uuid.UUID("6f1d3c2e-16a0-4b6e-9c1e-57d1b0a1c0de")
LAST_FOLDER = "Deletions and signing out"
AVATAR = "avatar.png"

FLOW: dict[str, int] = {
    "accept_invite": 404,  # the invite is for someone else
    "decline_invite": 404,
    "join_group": 409,  # the creator is already a member
    "remove_member": 409,  # {{user_id}} is the signed-in owner, who cannot leave
    "change_role": 409,  # nor change their own role
    "mfa_enable": 400,  # the example code is not the current one
    "mfa_disable": 409,  # MFA is not on
    "change_password": 403,  # the example's current password is not the user's
    "delete_me": 403,  # nor is the example's password
    "verify_email": 400,  # a real token arrives by email; the example's was never issued
    "reset_password": 400,  # likewise
    "read_notification": 404,  # the example id names no notification of the user
}
"""Statuses a run of the whole collection on a fresh node gets that are not 2xx, and why."""

PRE_REQUEST = r"""
// StudyBuddy: sign in when a request needs a token, refresh before the token expires.
// Uses the environment's email and password; keeps accessToken, its expiry, and the
// refresh and csrf_token cookies in the environment. Refresh echoes the csrf_token cookie
// as the X-CSRF-Token header, as the API asks.
const base = pm.environment.get("baseUrl");
const jar = pm.cookies.jar();
jar.get(base, "csrf_token", function (error, value) {
    if (!error && value) { pm.variables.set("csrfToken", value); }
});
const needsToken = !(pm.request.auth && pm.request.auth.type === "noauth");
const token = pm.environment.get("accessToken");
const expiresAt = Number(pm.environment.get("accessTokenExpiresAt") || 0);
const margin = Number(pm.environment.get("refreshMarginS") || 60) * 1000;
if (needsToken && !(token && Date.now() < expiresAt - margin)) {
    if (pm.environment.get("refreshCookie")) { refresh(); } else { signIn(); }
}

function keep(response) {
    const data = response.json().data;
    pm.environment.set("accessToken", data.access_token);
    pm.environment.set("accessTokenExpiresAt", String(Date.now() + data.expires_in * 1000));
    pm.environment.set("user_id", data.user.id);
    pm.collectionVariables.set("user_id", data.user.id);
    response.headers.each(function (header) {
        if (header.key.toLowerCase() !== "set-cookie") { return; }
        const pair = header.value.split(";")[0];
        const name = pair.split("=")[0];
        const value = pair.substring(name.length + 1);
        if (name === "refresh_token" || name === "__Host-refresh") {
            pm.environment.set("refreshCookie", pair);
        }
        if (name === "csrf_token") { pm.environment.set("csrfCookie", value); }
    });
}

function signIn() {
    pm.sendRequest({
        url: base + "/api/v1/auth/login",
        method: "POST",
        header: { "Content-Type": "application/json" },
        body: {
            mode: "raw",
            raw: JSON.stringify({
                email: pm.environment.get("email"),
                password: pm.environment.get("password")
            })
        }
    }, function (error, response) {
        if (error || response.code !== 200) {
            throw new Error("sign-in failed: " + (error || response.code + " " + response.text()));
        }
        keep(response);
    });
}

function refresh() {
    const csrf = pm.environment.get("csrfCookie");
    pm.sendRequest({
        url: base + "/api/v1/auth/refresh",
        method: "POST",
        header: {
            "Cookie": pm.environment.get("refreshCookie") + "; csrf_token=" + csrf,
            "X-CSRF-Token": csrf
        }
    }, function (error, response) {
        if (!error && response.code === 200) {
            keep(response);
            const done = Number(pm.environment.get("refreshes") || 0);
            pm.environment.set("refreshes", String(done + 1));
            return;
        }
        pm.environment.unset("refreshCookie");
        signIn();
    });
}
"""


def document() -> dict[str, Any]:
    """The OpenAPI document, as ``/openapi.json`` serves it."""
    from server.app import create_app  # noqa: PLC0415 - keeps ``--help`` free of the app

    doc: dict[str, Any] = create_app().state.openapi
    return doc


def _lines(script: str) -> list[str]:
    return script.strip("\n").split("\n")


def _path(path: str) -> list[str]:
    return [re.sub(r"^{(\w+)}$", r"{{\1}}", part) for part in path.strip("/").split("/")]


def _url(path: str, query: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    segments = _path(path)
    raw = "{{baseUrl}}/" + "/".join(segments)
    url: dict[str, Any] = {"raw": raw, "host": ["{{baseUrl}}"], "path": segments}
    if query:
        url["query"] = query
        raw += "?" + "&".join(f"{q['key']}={q['value']}" for q in query)
        url["raw"] = raw
    return url


def _query(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Query parameters with an example value, disabled so that a plain send uses defaults."""
    params = []
    for param in spec.get("parameters", []):
        if param["in"] != "query":
            continue
        examples = param["schema"].get("examples") or [param["schema"].get("default", "")]
        params.append(
            {
                "key": param["name"],
                "value": str(examples[0]),
                "description": param.get("description", ""),
                "disabled": True,
            }
        )
    return params


def _headers(spec: dict[str, Any], has_json: bool) -> list[dict[str, str]]:
    headers = [{"key": "Accept", "value": "application/json"}]
    if has_json:
        headers.append({"key": "Content-Type", "value": "application/json"})
    for param in spec.get("parameters", []):
        if param["in"] == "header" and param["name"] == "X-CSRF-Token":
            headers.append({"key": "X-CSRF-Token", "value": "{{csrfToken}}"})
    return headers


def _body(operation_id: str, spec: dict[str, Any]) -> dict[str, Any] | None:
    content = spec.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        return {"mode": "formdata", "formdata": [{"key": "file", "type": "file", "src": AVATAR}]}
    if "application/json" not in content:
        return None
    example = dict(content["application/json"]["example"])
    if operation_id == "create_webhook":
        example["url"] = "{{webhookUrl}}"
        example["group_id"] = "{{group_id}}"
    if operation_id == "create_invite":
        example["user_id"] = "{{friend_id}}"
    return {
        "mode": "raw",
        "raw": json.dumps(example, indent=2, ensure_ascii=False),
        "options": {"raw": {"language": "json"}},
    }


def _created_variable(spec: dict[str, Any]) -> str | None:
    """The path parameter that the ``id`` of what this operation creates fills (from links)."""
    for link in spec.get("responses", {}).get("201", {}).get("links", {}).values():
        for name, source in link["parameters"].items():
            if source == "$response.body#/data/id":
                return str(name)
    return None


def _tests(operation_id: str, spec: dict[str, Any]) -> list[str]:
    documented = sorted(int(code) for code in spec["responses"])
    success = next(int(code) for code in spec["responses"] if code.startswith("2"))
    expected = FLOW.get(operation_id, success)
    script = [
        f"const documented = {json.dumps(documented)};",
        'pm.test("answers a documented status", function () {',
        "    pm.expect(documented).to.include(pm.response.code);",
        "});",
        'if (pm.environment.get("expectFlow")) {',
        f'    pm.test("answers {expected} in a run of the whole collection", function () {{',
        f"        pm.response.to.have.status({expected});",
        "    });",
        "}",
        'pm.test("carries X-Request-ID", function () {',
        '    pm.response.to.have.header("X-Request-ID");',
        "});",
        "if (pm.response.code !== 204) {",
        '    pm.test("answers the contract\'s envelope", function () {',
        "        const body = pm.response.json();",
        '        if (pm.response.code < 400) { pm.expect(body).to.have.property("data"); }',
        '        else { pm.expect(body.error).to.have.property("code"); }',
        "    });",
        "}",
    ]
    variable = _created_variable(spec)
    if variable:
        script += [
            "if (pm.response.code === 201) {",
            f'    pm.collectionVariables.set("{variable}", pm.response.json().data.id);',
            "}",
        ]
    return script


def _examples(spec: dict[str, Any], request: dict[str, Any]) -> list[dict[str, Any]]:
    examples = []
    for code, answer in spec["responses"].items():
        content = answer.get("content", {}).get("application/json", {})
        if not code.startswith("2"):
            continue
        body = content.get("example")
        examples.append(
            {
                "name": answer["description"],
                "originalRequest": request,
                "status": answer["description"],
                "code": int(code),
                "_postman_previewlanguage": "json" if body is not None else "text",
                "header": [{"key": "Content-Type", "value": "application/json"}]
                if body is not None
                else [],
                "body": json.dumps(body, indent=2, ensure_ascii=False) if body is not None else "",
            }
        )
    return examples


def _item(path: str, method: str, spec: dict[str, Any]) -> dict[str, Any]:
    operation_id = spec["operationId"]
    body = _body(operation_id, spec)
    request: dict[str, Any] = {
        "method": method.upper(),
        "header": _headers(spec, body is not None and body["mode"] == "raw"),
        "url": _url(path, _query(spec)),
        "description": spec.get("description", spec["summary"]),
    }
    if body is not None:
        request["body"] = body
    if "security" not in spec:
        request["auth"] = {"type": "noauth"}
    return {
        "id": str(uuid.uuid5(NAMESPACE, operation_id)),
        "name": spec["summary"],
        "request": request,
        "response": _examples(spec, request),
        "event": [
            {
                "listen": "test",
                "script": {"type": "text/javascript", "exec": _tests(operation_id, spec)},
            }
        ],
    }


def _is_last(method: str, operation_id: str) -> bool:
    return method == "delete" or operation_id == "logout"


def _last_order(item: dict[str, Any]) -> int:
    """Deletions from the innermost resource out; signing out, then the account, last."""
    path = str(item["request"]["url"]["raw"])
    if path.endswith("/auth/logout"):
        return 98
    if path.endswith("/users/me"):
        return 99
    if path.endswith("/study-groups/{{group_id}}"):
        return 97  # after what lives in the group
    return -path.count("/")


def build(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The collection and the environment of ``doc``."""
    folders: dict[str, list[dict[str, Any]]] = {}
    last: list[dict[str, Any]] = []
    variables: dict[str, str] = {}
    for path, methods in doc["paths"].items():
        for name in re.findall(r"{(\w+)}", path):
            variables.setdefault(name, str(uuid.uuid5(NAMESPACE, name)))
        for method, spec in methods.items():
            item = _item(path, method, spec)
            if _is_last(method, spec["operationId"]):
                last.append(item)
            else:
                folders.setdefault(spec["tags"][0], []).append(item)
    for items in folders.values():
        items.sort(key=lambda item: item["request"]["method"] != "POST" or "accept" in item["name"])
    last.sort(key=_last_order)
    info = doc["info"]
    collection = {
        "info": {
            "_postman_id": str(uuid.uuid5(NAMESPACE, "collection")),
            "name": info["title"],
            "description": info["description"]
            + "\n\nGenerated from /openapi.json by scripts/postman.py; see docs/api.md.",
            "schema": SCHEMA,
        },
        "auth": {
            "type": "bearer",
            "bearer": [{"key": "token", "value": "{{accessToken}}", "type": "string"}],
        },
        "event": [
            {
                "listen": "prerequest",
                "script": {"type": "text/javascript", "exec": _lines(PRE_REQUEST)},
            }
        ],
        "variable": [{"key": key, "value": value} for key, value in sorted(variables.items())],
        "item": [
            *({"name": tag.capitalize(), "item": items} for tag, items in folders.items()),
            {"name": LAST_FOLDER, "item": last},
        ],
    }
    environment = {
        "id": str(uuid.uuid5(NAMESPACE, "environment")),
        "name": "StudyBuddy (local node)",
        "values": [
            _value("baseUrl", "http://127.0.0.1:8000"),
            _value("email", "you@example.com"),
            _value("password", "", secret=True),
            _value("friend_id", "", description="another user's id, to invite"),
            _value("webhookUrl", "https://hooks.example.com/studybuddy"),
            _value("accessToken", "", secret=True),
            _value("accessTokenExpiresAt", "0"),
            _value("refreshCookie", "", secret=True),
            _value("csrfCookie", "", secret=True),
            _value("refreshMarginS", "60", description="refresh this long before expiry"),
            _value("refreshes", "0"),
            _value("expectFlow", ""),
        ],
        "_postman_variable_scope": "environment",
    }
    return collection, environment


def _value(key: str, value: str, *, secret: bool = False, description: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {"key": key, "value": value, "enabled": True}
    if secret:
        entry["type"] = "secret"
    if description:
        entry["description"] = description
    return entry


def render(value: dict[str, Any]) -> str:
    """The file text of a collection or an environment."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def verify_run(exported: Path) -> None:
    """After ``newman --export-environment``: the run signed in and refreshed at least once.

    Raises:
        SystemExit: it did not.
    """
    values = {v["key"]: v["value"] for v in json.loads(exported.read_text())["values"]}
    refreshes = int(values.get("refreshes") or 0)
    if not values.get("accessToken") or refreshes < 1:
        sys.exit(f"the run did not sign in and refresh (refreshes: {refreshes})")
    print(f"postman: signed in, refreshed the access token {refreshes} times")


def main() -> None:
    """Write the files, or with ``--check`` exit 1 when they differ from a regeneration."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="compare only")
    parser.add_argument("--verify-run", type=Path, help="an environment newman exported")
    args = parser.parse_args()
    if args.verify_run:
        verify_run(args.verify_run)
        return
    collection, environment = build(document())
    stale = []
    for target, value in ((COLLECTION, collection), (ENVIRONMENT, environment)):
        text = render(value)
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(target.name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if stale:
        sys.exit(f"stale: {', '.join(stale)}; run python -m scripts.postman")


if __name__ == "__main__":
    main()
