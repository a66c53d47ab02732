"""Typed dependencies: the settings, the Redis client and the store the app was built with."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import Depends, Request

from services.core.settings import Settings
from services.core.store import Store


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_client(request: Request) -> redis.Redis:
    return request.app.state.client


def get_store(request: Request) -> Store:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[redis.Redis, Depends(get_client)]
StoreDep = Annotated[Store, Depends(get_store)]
