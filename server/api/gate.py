"""Admission of a REST call: client address, authentication and rate limits."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from server.api.operation import Bucket, Operation
from server.errors import AppError, RateLimited, Unauthorized
from server.observability.context import user_id_var
from server.redis_client import RedisClient
from server.security.client_ip import Network, client_ip, parse_networks, rate_key
from server.security.ratelimit import (
    Decision,
    Rate,
    RateLimiter,
    shared_limiter,
)
from server.security.tokens import Principal
from server.settings import Settings

Authenticate = Callable[[str], Awaitable[Principal]]
RUNNING_PER_USER = 10
"""A user's REST calls running at once on a node; more are 429 at once. The rate limit
counts calls per minute; this bounds what they hold at one time (database connections): a
hundred slow searches fired together held the whole pool and starved everyone else."""


@dataclass(frozen=True, slots=True)
class Rates:
    """The three REST buckets."""

    auth: Rate
    user: Rate
    anon: Rate


class Rejected(Exception):
    """Admission refused: the error to answer with, and the rate-limit headers."""

    def __init__(self, error: AppError, headers: dict[str, str]) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = headers


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header.

    Raises:
        Unauthorized: absent or not a bearer credential.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send an access token as 'Authorization: Bearer <token>'")
    return token.strip()


class Gate:
    """Decides who the caller is and whether they may call now."""

    def __init__(
        self,
        limiter: RateLimiter,
        rates: Rates,
        trusted_proxies: tuple[Network, ...],
        authenticate: Authenticate,
    ) -> None:
        self._limiter = limiter
        self._rates = rates
        self._trusted = trusted_proxies
        self._authenticate = authenticate
        self._running: dict[uuid.UUID, int] = {}
        self.running_per_user = RUNNING_PER_USER

    @contextmanager
    def running(self, principal: Principal | None) -> Iterator[None]:
        """Count a signed-in caller's call while it runs.

        Raises:
            RateLimited: the caller has ``running_per_user`` calls running already (the
                answer keeps the rate limit's ``X-RateLimit-*`` headers of the admission).
        """
        if principal is None:
            yield
            return
        user = principal.user_id
        count = self._running.get(user, 0)
        if count >= self.running_per_user:
            message = "Too many of your requests are running at once; wait for them to finish"
            raise RateLimited(1, message)
        self._running[user] = count + 1
        try:
            yield
        finally:
            left = self._running[user] - 1
            if left:
                self._running[user] = left
            else:
                del self._running[user]

    def client_ip(self, request: Request) -> str:
        """The caller's address, honouring ``TRUSTED_PROXIES``."""
        peer = request.client.host if request.client else None
        return client_ip(peer, request.headers.getlist("x-forwarded-for"), self._trusted)

    async def admit(
        self, request: Request, op: Operation[Any]
    ) -> tuple[Principal | None, dict[str, str]]:
        """Rate-limit and authenticate one call.

        Auth-bucket operations are limited per address before anything else; other
        operations are limited per user once authenticated, or per address when anonymous
        or when authentication fails (so 401 answers count).

        Returns:
            The caller (None for anonymous operations) and the rate-limit headers.

        Raises:
            Rejected: unauthenticated or over a limit.
        """
        ip = rate_key(self.client_ip(request))
        headers: dict[str, str] = {}
        if op.bucket is Bucket.AUTH:
            headers = self._enforce(await self._limiter.hit(f"auth:{ip}", self._rates.auth))
        if not op.auth:
            if op.bucket is Bucket.DEFAULT:
                headers = self._enforce(await self._limiter.hit(f"ip:{ip}", self._rates.anon))
            return None, headers
        try:
            principal = await self._authenticate(bearer_token(request))
        except Unauthorized as exc:
            if op.bucket is Bucket.DEFAULT:
                headers = self._enforce(await self._limiter.hit(f"ip:{ip}", self._rates.anon))
            raise Rejected(exc, headers) from None
        user_id_var.set(str(principal.user_id))
        if op.bucket is Bucket.DEFAULT:
            key = f"user:{principal.user_id}"
            headers = self._enforce(await self._limiter.hit(key, self._rates.user))
        return principal, headers

    @staticmethod
    def _enforce(decision: Decision) -> dict[str, str]:
        headers = decision.headers()
        if not decision.allowed:
            raise Rejected(RateLimited(decision.retry_after), headers)
        return headers


def build_gate(settings: Settings, redis: RedisClient | None, authenticate: Authenticate) -> Gate:
    """The REST gate: rate limits in Redis (shared by every node) or in process."""
    limiter = shared_limiter(redis, settings.redis_prefix)
    rates = Rates(
        Rate.parse(settings.rate_limit_auth),
        Rate.parse(settings.rate_limit_user),
        Rate.parse(settings.rate_limit_anon),
    )
    return Gate(limiter, rates, parse_networks(settings.trusted_proxies), authenticate)
