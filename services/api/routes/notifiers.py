"""/api/notifiers: named notifier configurations. Create, replace, list, get, delete, and
send a test message. A configuration is always shown masked: no answer carries a secret.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response, status

from services.api.auth import AUTH_RESPONSES, AdminScope, ReadScope
from services.api.deps import StoreDep
from services.api.errors import error_responses
from services.notify.configs import NotifierPublic, parse_document
from services.notify.delivery import Deliveries, SendTestResult

router = APIRouter(prefix="/api/notifiers", tags=["notifiers"], responses=AUTH_RESPONSES)


def get_deliveries(store: StoreDep) -> Deliveries:
    return Deliveries(store.client, store.settings)


DeliveriesDep = Annotated[Deliveries, Depends(get_deliveries)]
Document = Annotated[dict[str, Any], Body(
    description='a notifier configuration with its name, e.g. {"name": "team-email", '
                '"type": "sendgrid", "api_key": "...", "from_email": "...", "to": [...]}')]


@router.get("", response_model=list[NotifierPublic])
def list_notifiers(caller: ReadScope, deliveries: DeliveriesDep) -> list[NotifierPublic]:
    """Every notifier (the outbox, the stored ones, the environment's), masked."""
    return deliveries.notifiers.list()


@router.post("", response_model=NotifierPublic, status_code=status.HTTP_201_CREATED,
             responses=error_responses(409))
def create_notifier(caller: AdminScope, document: Document, deliveries: DeliveriesDep,
                    replace: Annotated[bool, Query(description="replace one of that name")]
                    = False) -> NotifierPublic:
    """Store a notifier; its secrets are encrypted at rest."""
    name, config = parse_document(document)
    return deliveries.notifiers.put(name, config, replace=replace)


@router.put("/{name}", response_model=NotifierPublic, responses=error_responses(409))
def put_notifier(caller: AdminScope, name: str, document: Document, deliveries: DeliveriesDep) -> NotifierPublic:
    """Create or replace the notifier `name`."""
    name, config = parse_document(document, name)
    return deliveries.notifiers.put(name, config, replace=True)


@router.get("/{name}", response_model=NotifierPublic, responses=error_responses(404))
def get_notifier(caller: ReadScope, name: str, deliveries: DeliveriesDep) -> NotifierPublic:
    return deliveries.notifiers.get(name)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
def delete_notifier(caller: AdminScope, name: str, deliveries: DeliveriesDep) -> Response:
    deliveries.notifiers.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/test", response_model=SendTestResult, responses=error_responses(404, 409))
def test_notifier(caller: AdminScope, name: str, deliveries: DeliveriesDep) -> SendTestResult:
    """Send a harmless test message once, and return what the provider answered."""
    return deliveries.send_test(name)
