"""/api/tokens: list, create and revoke API tokens (admin). A new token's value is in the
answer that creates it and nowhere else afterwards; Redis keeps only its hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from services.api.auth import AUTH_RESPONSES, AdminScope, token_cache
from services.api.deps import StoreDep
from services.api.errors import error_responses
from services.core.tokens import (
    MAX_TOKEN_LIFETIME_S,
    NAME_PATTERN,
    ApiTokenPublic,
    Scope,
    TokenStore,
)

router = APIRouter(prefix="/api/tokens", tags=["tokens"], responses=AUTH_RESPONSES)


def get_tokens(store: StoreDep) -> TokenStore:
    return TokenStore(store.client, store.keys)


TokensDep = Annotated[TokenStore, Depends(get_tokens)]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    scope: Scope
    expires_in_s: float | None = Field(None, gt=0, le=MAX_TOKEN_LIFETIME_S,
                                       description="none: it does not expire")


class TokenCreated(ApiTokenPublic):
    token: str = Field(description="the token itself: shown this once, keep it now")


@router.get("", response_model=list[ApiTokenPublic])
def list_tokens(caller: AdminScope, tokens: TokensDep) -> list[ApiTokenPublic]:
    """Every token by name, expired ones included; never a token's value."""
    return [token.public() for token in tokens.list()]


@router.post("", response_model=TokenCreated, status_code=status.HTTP_201_CREATED,
             responses=error_responses(409))
def create_token(caller: AdminScope, spec: TokenCreate, tokens: TokensDep) -> TokenCreated:
    """A new token; its name must be free."""
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=spec.expires_in_s) if spec.expires_in_s else None
    value, token = tokens.create(spec.name, spec.scope, now, expires)
    return TokenCreated(**token.public().model_dump(), token=value)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
def revoke_token(caller: AdminScope, name: str, tokens: TokensDep, request: Request) -> Response:
    """Revoke a token: requests that carry it are refused from now on by this API process,
    and by every other one within FLOWKEEPER_API_TOKEN_CACHE_S (5 s by default)."""
    tokens.revoke(name)
    token_cache(request).forget_all()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
