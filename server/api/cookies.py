"""Session cookies: the refresh token and the CSRF double-submit token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.security.csrf import CSRF_COOKIE, new_csrf_token
from server.settings import Settings

DEV_REFRESH_COOKIE = "refresh_token"
SECURE_REFRESH_COOKIE = "__Host-refresh"


def refresh_cookie_name(settings: Settings) -> str:
    """``refresh_token`` on plain-HTTP dev, ``__Host-refresh`` (Secure) elsewhere."""
    return DEV_REFRESH_COOKIE if settings.is_dev else SECURE_REFRESH_COOKIE


def read_refresh_cookie(request: Request, settings: Settings) -> str | None:
    """The refresh token the browser sent, if any."""
    return request.cookies.get(refresh_cookie_name(settings))


def set_session_cookies(response: Response, settings: Settings, refresh_token: str) -> None:
    """Set the refresh cookie (HttpOnly) and a fresh CSRF cookie (readable by scripts)."""
    secure = not settings.is_dev
    response.set_cookie(
        refresh_cookie_name(settings),
        refresh_token,
        max_age=settings.refresh_token_ttl_s,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE,
        new_csrf_token(),
        max_age=settings.refresh_token_ttl_s,
        path="/",
        secure=secure,
        httponly=False,
        samesite="strict",
    )


def clear_session_cookies(response: Response, settings: Settings) -> None:
    """Expire both cookies."""
    secure = not settings.is_dev
    response.delete_cookie(
        refresh_cookie_name(settings), path="/", secure=secure, httponly=True, samesite="strict"
    )
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")
