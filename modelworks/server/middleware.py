"""What every request and response goes through, below the routes.

`SecurityHeaders` puts the browser-facing protections on every response: no content sniffing,
no framing (``X-Frame-Options`` and CSP ``frame-ancestors``), a strict Content-Security-Policy
(scripts, styles and images from this server only) on HTML pages, and ``Cache-Control:
no-store`` on API answers, some of which carry tokens.

`BodyLimits` bounds every request body before a route reads it: at most ``max_body`` bytes (413),
except on the routes that stream an upload to disk, which get ``max_stream``; a body that sends
nothing for ``idle_timeout_s`` seconds is refused with 408 (a client that stalls mid-body would
otherwise hold a connection and a buffer for as long as it likes). Ordinary bodies are read whole
here, within those bounds, and handed on; streamed ones are checked chunk by chunk as the route
reads them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelworks.platform.errors import RequestTimeout, TooLarge

HTML_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"


class SecurityHeaders:
    """Add the security headers (see the module docstring) to every HTTP response."""

    def __init__(self, app: ASGIApp, api_prefix: str = "/api/") -> None:
        self.app = app
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"].startswith(self.api_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                kind = next((value for name, value in headers if name.lower() == b"content-type"), b"")
                html = kind.startswith(b"text/html")
                added = {
                    b"x-content-type-options": b"nosniff",
                    b"x-frame-options": b"DENY",
                    b"referrer-policy": b"no-referrer",
                    b"content-security-policy": (HTML_POLICY if html else OTHER_POLICY).encode(),
                }
                if no_store:
                    added[b"cache-control"] = b"no-store"
                headers += [(name, value) for name, value in added.items() if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimits:
    """Bound the size of every request body and how long it may stall (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        max_stream: int,
        idle_timeout_s: float,
        refuse: Callable[[int, str], Any],
        streamed: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.max_body, self.max_stream, self.idle_timeout_s = max_body, max_stream, idle_timeout_s
        self.refuse = refuse  # (status, message) -> an ASGI response, in the API's error shape
        self.streamed = [compile_path(path)[0] for path in streamed]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        streamed = any(pattern.match(scope["path"]) for pattern in self.streamed)
        limit = self.max_stream if streamed else self.max_body
        too_large = _too_large(limit, "MODELWORKS_MAX_UPLOAD_MB" if streamed else "MODELWORKS_MAX_BODY_MB")
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self.refuse(413, too_large)(scope, receive, send)
            return
        body = GuardedBody(receive, limit, self.idle_timeout_s, too_large)
        if streamed:  # the route reads it; a breach raises in the route, answered by the error handlers
            await self.app(scope, body, send)
            return
        try:
            messages = await body.read_all()
        except (TooLarge, RequestTimeout) as e:
            await self.refuse(413 if isinstance(e, TooLarge) else 408, str(e))(scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive), send)


class GuardedBody:
    """An ASGI ``receive`` that raises `TooLarge` past ``limit`` bytes and `RequestTimeout` when
    the client sends nothing for ``idle_timeout_s`` while the body is incomplete."""

    def __init__(self, receive: Receive, limit: int, idle_timeout_s: float, too_large: str) -> None:
        self.receive, self.limit, self.idle_timeout_s, self.too_large = receive, limit, idle_timeout_s, too_large
        self.received, self.done = 0, False

    async def __call__(self) -> Message:
        if self.done:  # after the body, receive only waits for a disconnect: no deadline
            return await self.receive()
        try:
            with anyio.fail_after(self.idle_timeout_s):
                message = await self.receive()
        except TimeoutError:
            self.done = True
            raise RequestTimeout(f"the request body stalled: nothing arrived for {self.idle_timeout_s:g} s") from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.done = True
                raise TooLarge(self.too_large)
            self.done = not message.get("more_body", False)
        else:
            self.done = True
        return message

    async def read_all(self) -> list[Message]:
        messages = [await self()]
        while not self.done:
            messages.append(await self())
        return messages


def _replay(messages: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if re.fullmatch(rb"[0-9]{1,19}", value) else None
    return None


def _too_large(limit: int, setting: str) -> str:
    return f"the request body is larger than the limit of {limit / (1 << 20):g} MB ({setting})"
