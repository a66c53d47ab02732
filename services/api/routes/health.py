"""GET /api/health: is Redis reachable, which version runs."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Response

from services.api.deps import ClientDep, SettingsDep
from services.api.schemas import HealthPublic

router = APIRouter(prefix="/api/health", tags=["health"])


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flowkeeper")
    except PackageNotFoundError:
        return "unknown"


@router.get("", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def health(settings: SettingsDep, client: ClientDep, response: Response) -> HealthPublic:
    """200 when Redis answers PING, 503 when it does not."""
    try:
        reachable = bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        reachable = False
    if not reachable:
        response.status_code = 503
    return HealthPublic(status="ok" if reachable else "unavailable", version=package_version(),
                        redis=settings.redacted_redis(), redis_reachable=reachable)
