"""/api/silences: mute the notifications whose labels match, for a while. Create (matchers,
a duration or an end, a comment), list, get, and expire (DELETE)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from services.api.auth import AUTH_RESPONSES, AdminScope, ReadScope
from services.api.deps import StoreDep
from services.api.errors import error_responses
from services.api.schemas import IdInPath
from services.notify.silences import SilenceCreate, SilencePublic, SilenceStore, public

router = APIRouter(prefix="/api/silences", tags=["silences"], responses=AUTH_RESPONSES)


def get_silences(store: StoreDep) -> SilenceStore:
    return SilenceStore(store.client, store.keys)


SilencesDep = Annotated[SilenceStore, Depends(get_silences)]


@router.post("", response_model=SilencePublic, status_code=status.HTTP_201_CREATED)
def create_silence(caller: AdminScope, spec: SilenceCreate, silences: SilencesDep) -> SilencePublic:
    now = time.time()
    return public(silences.create(spec, now), now)


@router.get("", response_model=list[SilencePublic])
def list_silences(caller: ReadScope, silences: SilencesDep,
                  expired: Annotated[bool, Query(description="include ended silences")]
                  = False) -> list[SilencePublic]:
    now = time.time()
    return [public(silence, now) for silence in silences.all(now)
            if expired or not silence.expired(now)]


@router.get("/{silence_id}", response_model=SilencePublic, responses=error_responses(404))
def get_silence(caller: ReadScope, silence_id: IdInPath, silences: SilencesDep) -> SilencePublic:
    return public(silences.get(silence_id), time.time())


@router.delete("/{silence_id}", response_model=SilencePublic, responses=error_responses(404))
def expire_silence(caller: AdminScope, silence_id: IdInPath, silences: SilencesDep) -> SilencePublic:
    """End the silence now (one that has not started is removed)."""
    now = time.time()
    return public(silences.expire(silence_id, now), now, "expired")
