"""Serving the web app and the SDK: validators, versioned URLs, the page's import map and CSP."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from pathlib import Path

import pytest
from starlette.requests import Request

from server.api.webapp import (
    APP_DIR,
    SDK_DIR,
    build_webapp,
    make_asset,
    not_modified,
    read_assets,
)
from server.middleware.security_headers import CSP, app_csp

MTIME = 1_700_000_000


def request(**headers: str) -> Request:
    """A GET with these headers."""
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


def test_an_asset_has_a_strong_etag_of_its_content_and_a_type() -> None:
    """Same bytes, same ETag; other bytes, another; text types say UTF-8."""
    js = make_asset("a.js", b"export {};", MTIME)
    assert re.fullmatch(r'"[0-9a-f]{32}"', js.etag)
    assert js.etag == make_asset("b.js", b"export {};", MTIME + 5).etag
    assert js.etag != make_asset("a.js", b"export { x };", MTIME).etag
    assert js.version == js.etag.strip('"')[:12]
    assert js.media_type == "text/javascript; charset=utf-8"
    assert make_asset("a.css", b"", MTIME).media_type == "text/css; charset=utf-8"
    assert make_asset("a.svg", b"", MTIME).media_type == "image/svg+xml"
    assert make_asset("a.d.ts", b"", MTIME).media_type == "text/plain; charset=utf-8"
    assert make_asset("blob", b"", MTIME).media_type == "application/octet-stream"
    assert js.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"if_none_match": "ETAG"}, True),
        ({"if_none_match": 'W/"other", ETAG'}, True),
        ({"if_none_match": "W/ETAG"}, True),
        ({"if_none_match": "*"}, True),
        ({"if_none_match": '"other"'}, False),
        # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
        ({"if_none_match": '"other"', "if_modified_since": "Tue, 14 Nov 2023 22:13:20 GMT"}, False),
        ({"if_modified_since": "Tue, 14 Nov 2023 22:13:20 GMT"}, True),
        ({"if_modified_since": "Wed, 15 Nov 2023 00:00:00 GMT"}, True),
        ({"if_modified_since": "Mon, 13 Nov 2023 00:00:00 GMT"}, False),
        ({"if_modified_since": "yesterday"}, False),
    ],
)
def test_revalidation(headers: dict[str, str], expected: bool) -> None:
    """A client's copy is current by ETag, or by date when it sends no ETag."""
    asset = make_asset("a.js", b"x", MTIME)
    filled = {k: v.replace("ETAG", asset.etag) for k, v in headers.items()}
    assert not_modified(request(**filled), asset) is expected


def test_the_page_names_every_file_by_version_and_maps_every_module(tmp_path: Path) -> None:
    """Placeholders become versioned URLs; the import map versions app modules and the SDK."""
    app, sdk = tmp_path / "app", tmp_path / "sdk"
    app.mkdir()
    sdk.mkdir()
    (app / "index.html").write_text(
        '<link href="{{v:a.css}}"><script type="importmap">{{importmap}}</script>'
        '<script type="module" src="{{v:main.js}}"></script>'
    )
    (app / "a.css").write_text("body{}")
    (app / "main.js").write_text("import './util.js';")
    (app / "util.js").write_text("export {};")
    (sdk / "studybuddy.js").write_text("export class StudyBuddyClient {}")
    (sdk / "studybuddy.d.ts").write_text("export {};")
    (sdk / "secret.txt").write_text("not served")
    webapp = build_webapp(app, sdk)
    html = webapp.page.body.decode()
    assert "{{" not in html
    assert f'href="/app/a.css?v={webapp.files["a.css"].version}"' in html
    assert f'src="/app/main.js?v={webapp.files["main.js"].version}"' in html
    imports_text = html.split('<script type="importmap">')[1].split("</script>")[0]
    assert json.loads(imports_text)["imports"] == {
        "/app/main.js": f"/app/main.js?v={webapp.files['main.js'].version}",
        "/app/util.js": f"/app/util.js?v={webapp.files['util.js'].version}",
        "/sdk/studybuddy.js": f"/sdk/studybuddy.js?v={webapp.sdk['studybuddy.js'].version}",
    }
    digest = base64.b64encode(hashlib.sha256(imports_text.encode()).digest()).decode()
    assert webapp.script_hashes == (f"'sha256-{digest}'",)
    assert set(webapp.sdk) == {"studybuddy.js", "studybuddy.d.ts"}
    assert "index.html" not in webapp.files


def test_a_new_file_version_changes_the_page(tmp_path: Path) -> None:
    """A deploy that changes a module changes the page's bytes, so its ETag: never stale."""
    (tmp_path / "index.html").write_text("<script type=importmap>{{importmap}}</script>")
    (tmp_path / "main.js").write_text("export const v = 1;")
    before = build_webapp(tmp_path, tmp_path).page.etag
    (tmp_path / "main.js").write_text("export const v = 2;")
    assert build_webapp(tmp_path, tmp_path).page.etag != before


def test_a_missing_sdk_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Without clients/js the node still starts, and says why /app/ will not work."""
    (tmp_path / "index.html").write_text("{{importmap}}")
    with caplog.at_level(logging.WARNING, "server.api.webapp"):
        webapp = build_webapp(tmp_path, tmp_path / "absent")
    assert webapp.sdk == {}
    assert "SDK is missing" in caplog.text


def test_read_assets_skips_folders_and_missing_names(tmp_path: Path) -> None:
    """Only regular files are served."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.js").write_text("1")
    assert set(read_assets(tmp_path)) == {"a.js"}
    assert set(read_assets(tmp_path, ["a.js", "gone.js"])) == {"a.js"}


def test_the_shipped_app_loads_nothing_from_another_host() -> None:
    """The real app: no absolute URL, no inline script but the import map, no inline style."""
    webapp = build_webapp()
    html = webapp.page.body.decode()
    texts = [html, *(asset.body.decode() for asset in webapp.files.values())]
    for text in texts:
        assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", text)
        assert not re.search(r"""(?:import|from)\s*\(?\s*['"](?:https?:)?//""", text)
        assert "url(http" not in text
    assert not re.search(r"\sstyle=", html), "inline style attributes need 'unsafe-inline'"
    assert not re.search(r"\son[a-z]+=", html), "inline handlers need 'unsafe-inline'"
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    inline = [(attrs, body) for attrs, body in scripts if body.strip()]
    assert [attrs for attrs, _ in inline] == [' type="importmap"']
    modules = {name for name in webapp.files if name.endswith(".js")}
    assert modules == {"app.js", "api.js", "dom.js", "panels.js", "room.js"}
    assert webapp.sdk["studybuddy.js"].body == (SDK_DIR / "studybuddy.js").read_bytes()
    assert (APP_DIR / "index.html").is_file()


def test_the_app_policy_allows_its_own_scripts_styles_and_sockets_only() -> None:
    """No 'unsafe-*'; sockets to the page's own host; a malformed Host is left out."""
    policy = app_csp("127.0.0.1:8000", ["'sha256-abc='"])
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self' 'sha256-abc='"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self' ws://127.0.0.1:8000 wss://127.0.0.1:8000"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in policy
    assert "connect-src 'self';" in app_csp("evil.example; script-src *", [])
    assert "connect-src 'self';" in app_csp(None, [])
    assert "ws://[::1]:8000" in app_csp("[::1]:8000", [])
    assert "'unsafe-inline'" in CSP  # the API and /docs keep their policy (Swagger UI styles)
