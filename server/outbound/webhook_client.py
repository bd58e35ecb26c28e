"""Posts webhook deliveries over HTTP to the exact address that was checked.

Resolving once, checking every address (``server.security.webhook_urls``) and then connecting
to the checked address closes the DNS-rebinding gap: the name cannot point somewhere else
between the check and the request. The ``Host`` header and the TLS server name still carry
the URL's host, so virtual hosting and certificate checks work as usual. Redirects are not
followed (a redirect could lead to a private address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from server.security.webhook_urls import IPAddress, WebhookTarget

MAX_ERROR_CHARS = 300
SUCCESS_CLASS = 2  # 2xx


@dataclass(frozen=True, slots=True)
class PostResult:
    """What one attempt got: an HTTP status, or an error when there was no response."""

    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and self.status // 100 == SUCCESS_CLASS


class WebhookClient:
    """Resolves receivers' host names and posts deliveries to them."""

    def __init__(self, timeout_s: float, *, verify_tls: bool = True) -> None:
        self._timeout_s = timeout_s
        self._timeout = httpx.Timeout(timeout_s)
        self._verify = verify_tls

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to (empty when it does not resolve)."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            return []
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def post(
        self, target: WebhookTarget, address: IPAddress, body: bytes, headers: dict[str, str]
    ) -> PostResult:
        """POST ``body`` to ``target`` at ``address``; never raises for network trouble.

        Only the status counts: the receiver's body is never read (a huge or endless one
        cannot fill the node's memory), and the whole attempt has one deadline (a receiver
        trickling bytes cannot hold it past the timeout).
        """
        literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        default_port = 443 if target.scheme == "https" else 80
        authority = target.host if target.port == default_port else f"{target.host}:{target.port}"
        request_headers = {**headers, "Host": authority, "Content-Type": "application/json"}
        url = f"{target.scheme}://{literal}:{target.port}{target.target}"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        client = httpx.AsyncClient(
            timeout=self._timeout, verify=self._verify, follow_redirects=False, trust_env=False
        )
        try:
            async with asyncio.timeout(self._timeout_s), client:
                request = client.build_request(
                    "POST", url, content=body, headers=request_headers, extensions=extensions
                )
                response = await client.send(request, stream=True)
                await response.aclose()  # the status is all we need: the body stays unread
        except (httpx.TimeoutException, TimeoutError):
            return PostResult(None, "timed out")
        except httpx.HTTPError as exc:
            return PostResult(None, (f"{type(exc).__name__}: {exc}")[:MAX_ERROR_CHARS])
        error = None if response.is_success else f"receiver answered {response.status_code}"
        return PostResult(response.status_code, error)
