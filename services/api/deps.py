"""Typed dependencies: the settings, the Redis client and the store the app was built with.

They are `async def` although they do no IO: FastAPI runs a plain `def` dependency in its
thread pool, a hop that costs more than the lookup itself."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import Depends, Request

from services.core.settings import Settings
from services.core.store import Store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_client(request: Request) -> redis.Redis:
    return request.app.state.client


async def get_store(request: Request) -> Store:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[redis.Redis, Depends(get_client)]
StoreDep = Annotated[Store, Depends(get_store)]
