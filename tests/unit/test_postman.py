"""clients/postman/ is what scripts/postman.py makes of the current OpenAPI document."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from scripts import postman

OPS = [
    (path, method, spec)
    for path, methods in postman.document()["paths"].items()
    for method, spec in methods.items()
]


@cache
def built() -> tuple[dict[str, Any], dict[str, Any]]:
    return postman.build(postman.document())


def _items() -> dict[str, dict[str, Any]]:
    collection, _ = built()
    return {item["id"]: item for folder in collection["item"] for item in folder["item"]}


def test_the_committed_files_are_regenerated_exactly() -> None:
    """A changed endpoint fails here until `python -m scripts.postman` is run and committed."""
    collection, environment = built()
    assert postman.COLLECTION.read_text(encoding="utf-8") == postman.render(collection)
    assert postman.ENVIRONMENT.read_text(encoding="utf-8") == postman.render(environment)


@pytest.mark.parametrize(("path", "method", "spec"), OPS, ids=[s["operationId"] for *_, s in OPS])
def test_every_operation_has_a_request_and_example_answers(
    path: str, method: str, spec: dict[str, Any]
) -> None:
    item = _items()[str(postman.uuid.uuid5(postman.NAMESPACE, spec["operationId"]))]
    request = item["request"]
    assert request["method"] == method.upper()
    assert request["url"]["raw"].startswith("{{baseUrl}}/" + path.strip("/").split("/{")[0])
    if "requestBody" in spec:
        assert request["body"]["mode"] in {"raw", "formdata"}
        if request["body"]["mode"] == "raw":
            json.loads(request["body"]["raw"].replace('"{{', '"').replace('}}"', '"'))
    success = [r for r in item["response"] if 200 <= r["code"] < 300]
    assert success, "an example answer"
    for example in success:
        if example["code"] != 204:
            assert "data" in json.loads(example["body"])
    tests = "\n".join(item["event"][0]["script"]["exec"])
    assert "answers a documented status" in tests


def test_the_pre_request_script_signs_in_and_refreshes_with_the_csrf_cookie() -> None:
    collection, environment = built()
    script = "\n".join(collection["event"][0]["script"]["exec"])
    assert collection["event"][0]["listen"] == "prerequest"
    assert "/api/v1/auth/login" in script
    assert "/api/v1/auth/refresh" in script
    assert '"X-CSRF-Token": csrf' in script
    assert '"csrf_token"' in script
    assert collection["auth"]["bearer"][0]["value"] == "{{accessToken}}"
    keys = {value["key"] for value in environment["values"]}
    assert {"baseUrl", "email", "password", "accessToken", "refreshCookie"} <= keys


def test_creations_feed_the_path_variables() -> None:
    """Creating a group sets {{group_id}}, which the group's other requests use."""
    items = _items()
    create = items[str(postman.uuid.uuid5(postman.NAMESPACE, "create_group"))]
    tests = "\n".join(create["event"][0]["script"]["exec"])
    assert 'pm.collectionVariables.set("group_id", pm.response.json().data.id);' in tests
    get = items[str(postman.uuid.uuid5(postman.NAMESPACE, "get_group"))]
    assert get["request"]["url"]["path"][-1] == "{{group_id}}"


def test_deletions_come_last_innermost_first() -> None:
    collection, _ = built()
    last = collection["item"][-1]
    assert last["name"] == postman.LAST_FOLDER
    names = [item["name"] for item in last["item"]]
    assert names[-2:] == ["Log out", "Delete your account"]
    assert names.index("Delete a message") < names.index("Delete a study group")
