"""The AS2 endpoint, POST /as2/receive: outside /api/v1 as partners' AS2 products call it."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, Response
from starlette.concurrency import run_in_threadpool

from maintainpro.api.problems import problem_response
from maintainpro.supply.as2.receiver import As2Receiver

RECEIVE_PATH = "/as2/receive"


def build_as2_router(receiver: As2Receiver, *, path: str = RECEIVE_PATH) -> APIRouter:
    """A router taking AS2 messages and asynchronous MDNs; mount it with app.include_router."""
    router = APIRouter(tags=["as2"])

    @router.post(path, include_in_schema=False)
    async def receive_as2(request: Request, background: BackgroundTasks) -> Response:
        """Read the raw body (signatures cover exact bytes) and process it off the event loop."""
        body = await request.body()
        reply = await run_in_threadpool(receiver.handle, dict(request.headers), body)
        if reply.problem is not None:
            return problem_response(request, reply.status, reply.problem)
        if reply.async_mdn is not None:
            # After the response: the sender's HTTP request must not wait for our MDN POST.
            background.add_task(receiver.post_async_mdn, *reply.async_mdn)
        return Response(reply.body, status_code=reply.status, headers=reply.headers)

    return router
