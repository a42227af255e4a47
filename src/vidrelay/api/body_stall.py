"""Cut a request whose body stops arriving.

uvicorn waits for a request body as long as the client keeps the connection open, so a client
that declares a large body and then sends nothing holds a connection (and whatever the handler
holds) for ever. Here, while the application waits for more of the body, no byte for
`timeout_s` ends the request: the application is told the client left (`http.disconnect`), and
the client gets a 408 with `connection: close`, so the server closes the connection. Once the
body is complete, `receive()` is passed through untimed (it then only waits for a disconnect).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidrelay.api.errors import error_response


class BodyStallMiddleware:
    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_complete = False
        stalled = False
        response_started = False

        async def timed_receive() -> Message:
            nonlocal body_complete, stalled
            if body_complete:
                return await receive()
            try:
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                stalled = body_complete = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_complete = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if stalled:  # the request is over: the 408 below is its only answer
                return
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not stalled:
                raise
            # The application failed because the body never came (as for a client that left);
            # that is the client's doing, answered below, not a server error to log.
        if stalled and not response_started:
            await _send_timeout(scope, receive, send, self.timeout_s)


async def _send_timeout(scope: Scope, receive: Receive, send: Send, timeout_s: float) -> None:
    stalled = error_response(
        408,
        f"The request body stalled: no byte arrived for {timeout_s:g} s.",
        code="request_timeout",
        headers={"connection": "close"},
    )
    await stalled(scope, receive, send)
