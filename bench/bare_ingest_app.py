"""The floor of the API ingest benchmark: a bare Starlette endpoint that does the same
XADD as POST /api/events (one event, or a list in one pipeline) with no token check, no
validation and no middleware, served by the same uvicorn. What flowkeeper's API costs
above it is the price of auth, validation and FastAPI.

`uvicorn bench.bare_ingest_app:app` with REDIS_URL set (bench/api_ingest.py starts it)."""

from __future__ import annotations

import json
import os
import uuid

import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STREAM = "bench:bare-events"
MAXLEN = 100_000

client = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)


async def post_events(request: Request) -> Response:
    body = json.loads(await request.body())
    events = body if isinstance(body, list) else [body]
    pipe = client.pipeline(transaction=False)
    ids = []
    for event in events:
        event.setdefault("id", str(uuid.uuid4()))
        ids.append(event["id"])
        pipe.execute_command("XADD", STREAM, "MAXLEN", "~", MAXLEN, "*",
                             "event", event.get("event", ""), "data", json.dumps(event))
    await pipe.execute()
    answer = {"ids": ids} if isinstance(body, list) else body
    return Response(json.dumps(answer), status_code=201, media_type="application/json")


app = Starlette(routes=[Route("/api/events", post_events, methods=["POST"])])
