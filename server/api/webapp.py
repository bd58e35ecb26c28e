"""The web app (``/app/``) and the JavaScript SDK (``/sdk/``), served by every node.

Files are read once when the app is built (a deploy restarts the node), kept in memory and
served with validators: a strong ``ETag`` (a hash of the content) and ``Last-Modified``, so a
revalidation costs a 304. Scripts, styles and modules are cached for an hour (static content)
and always requested under a content-versioned URL (``?v=<hash>``): the page names them so,
and an import map gives every module import the same versioned URL. The page itself is
``no-cache``: it is revalidated on each visit, so a new deploy's page, with the new versions
in it, is seen at once and a deploy is never stale.

The page runs under a Content-Security-Policy of its own (see
:func:`server.middleware.security_headers.app_csp`): its scripts and styles from this origin
only, the import map allowed by its hash, no inline script, and sockets to this origin.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from server.api.routing import labelled
from server.middleware.security_headers import app_csp

log = logging.getLogger(__name__)
APP_DIR: Final = Path(__file__).resolve().parents[1] / "static" / "app"
SDK_DIR: Final = Path(__file__).resolve().parents[2] / "clients" / "js"
SDK_FILES: Final = ("studybuddy.js", "studybuddy.d.ts")
STATIC_CACHE: Final = "public, max-age=3600"
PAGE_CACHE: Final = "no-cache"
INDEX: Final = "index.html"
EMAIL_LINK_PAGES: Final = ("verify-email", "reset-password")
"""Paths of the links in account emails (contract section 3); the web app takes them over."""
APP_VIEW_LINKS: Final = (
    "/groups/{group_id:uuid}",
    "/invites",
    "/notifications",
    "/settings/notifications",
)
"""Paths of the links in notification emails; each opens that view of the web app."""
_TYPES: Final = {".js": "text/javascript", ".ts": "text/plain", ".css": "text/css"}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file's bytes and validators."""

    body: bytes
    media_type: str
    etag: str
    last_modified: str
    mtime: int

    @property
    def version(self) -> str:
        """A short content hash for versioned URLs."""
        return self.etag.strip('"')[:12]


def make_asset(name: str, body: bytes, mtime: float) -> Asset:
    """An :class:`Asset` with a strong ETag over ``body``."""
    suffix = Path(name).suffix
    media_type = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Asset(body, media_type, f'"{digest}"', formatdate(int(mtime), usegmt=True), int(mtime))


def read_assets(folder: Path, names: Iterable[str] | None = None) -> dict[str, Asset]:
    """The regular files of ``folder`` (or only ``names``), by name; missing ones are left out."""
    paths = [folder / name for name in names] if names is not None else sorted(folder.iterdir())
    return {
        path.name: make_asset(path.name, path.read_bytes(), path.stat().st_mtime)
        for path in paths
        if path.is_file()
    }


def not_modified(request: Request, asset: Asset) -> bool:
    """Whether the client's copy is current: ``If-None-Match``, else ``If-Modified-Since``."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or asset.etag in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError):
        return False
    return asset.mtime <= since


def asset_response(
    request: Request, asset: Asset, cache_control: str, headers: Mapping[str, str] | None = None
) -> Response:
    """200 with the file, or 304 when the client's copy is current; validators on both."""
    all_headers = {
        "ETag": asset.etag,
        "Last-Modified": asset.last_modified,
        "Cache-Control": cache_control,
        **(headers or {}),
    }
    if not_modified(request, asset):
        return Response(status_code=304, headers=all_headers)
    return Response(asset.body, media_type=asset.media_type, headers=all_headers)


@dataclass(frozen=True, slots=True)
class WebApp:
    """The page, its files and the SDK, ready to serve."""

    page: Asset
    files: Mapping[str, Asset]
    sdk: Mapping[str, Asset]
    script_hashes: tuple[str, ...]


def import_map(files: Mapping[str, Asset], sdk: Mapping[str, Asset]) -> str:
    """Every module URL mapped to its versioned URL (so imports are cached by content)."""
    urls = {f"/app/{name}": asset for name, asset in files.items() if name.endswith(".js")}
    urls |= {f"/sdk/{name}": asset for name, asset in sdk.items() if name.endswith(".js")}
    imports = {url: f"{url}?v={asset.version}" for url, asset in sorted(urls.items())}
    return json.dumps({"imports": imports}, indent=1)


def build_webapp(app_dir: Path = APP_DIR, sdk_dir: Path = SDK_DIR) -> WebApp:
    """Read the app and SDK files and render the page with versioned URLs and its import map.

    The page template names files as ``{{v:<name>}}`` and holds ``{{importmap}}`` inside its
    ``<script type="importmap">``.
    """
    files = read_assets(app_dir)
    template = files.pop(INDEX)
    sdk = read_assets(sdk_dir, SDK_FILES)
    if len(sdk) < len(SDK_FILES):
        log.warning("the JavaScript SDK is missing from %s: /app/ will not work", sdk_dir)
    imports = import_map(files, sdk)
    html = template.body.decode()
    for name, asset in files.items():
        html = html.replace(f"{{{{v:{name}}}}}", f"/app/{name}?v={asset.version}")
    html = html.replace("{{importmap}}", imports)
    digest = base64.b64encode(hashlib.sha256(imports.encode()).digest()).decode()
    page = make_asset(INDEX, html.encode(), template.mtime)
    return WebApp(page, files, sdk, (f"'sha256-{digest}'",))


def webapp_routes(webapp: WebApp | None = None) -> list[BaseRoute]:
    """``/`` (to the app), ``/app/``, ``/app/<file>`` and ``/sdk/<file>``."""
    served = webapp or build_webapp()

    def page_headers(request: Request) -> dict[str, str]:
        host = request.headers.get("host")
        return {"Content-Security-Policy": app_csp(host, served.script_hashes)}

    async def root(_request: Request) -> Response:
        return RedirectResponse("/app/", status_code=302)

    async def email_link(request: Request) -> Response:
        """An emailed link (``/verify-email?token=``): to the web app, the token in the fragment.

        A fragment is never sent to a server again, nor in a ``Referer``.
        """
        token = request.query_params.get("token", "")
        step = request.url.path.strip("/")
        return RedirectResponse(f"/app/#/{step}?{urlencode({'token': token})}", status_code=302)

    async def app_view(request: Request) -> Response:
        """A link in a notification email (a group, the notifications, the email settings)."""
        return RedirectResponse(f"/app/#{request.url.path}", status_code=302)

    async def page(request: Request) -> Response:
        return asset_response(request, served.page, PAGE_CACHE, page_headers(request))

    async def app_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name == INDEX:
            return await page(request)
        return _static(request, served.files, name, page_headers(request))

    async def sdk_file(request: Request) -> Response:
        return _static(request, served.sdk, request.path_params["name"])

    return [
        labelled("/", root),
        *(labelled(f"/{step}", email_link) for step in EMAIL_LINK_PAGES),
        *(labelled(path, app_view) for path in APP_VIEW_LINKS),
        labelled("/app/", page),
        labelled("/app/{name:str}", app_file),
        labelled("/sdk/{name:str}", sdk_file),
    ]


def _static(
    request: Request,
    assets: Mapping[str, Asset],
    name: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    asset = assets.get(name)
    if asset is None:
        raise HTTPException(404)
    return asset_response(request, asset, STATIC_CACHE, headers)
