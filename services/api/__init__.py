"""The JSON API over the Redis data: runs, deployments, events (FastAPI).

`create_app(settings, client)` builds the app; `run_api(settings, host, port)`
serves it with uvicorn. OpenAPI documentation is at `/docs`.
"""

from services.api.app import create_app, run_api

__all__ = ["create_app", "run_api"]
