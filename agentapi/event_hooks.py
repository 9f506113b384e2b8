"""Who handles the agent's events: the interruptions app registers its handler here in its ``AppConfig.ready`` (the
layer order forbids ``agentapi`` to import it), so that an agent's notice and the account's EventBridge event go
through one service.

A handler is called inside the intake's transaction, once per stored event:
``handler(event=AgentEvent, action_deadline=datetime | None, actor=ApiKey)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EventHandler = Callable[..., Any]

_handler: EventHandler | None = None


def register_event_handler(handler: EventHandler | None) -> None:
    global _handler
    _handler = handler


def event_handler() -> EventHandler | None:
    return _handler
