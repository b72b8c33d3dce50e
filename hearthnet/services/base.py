"""What a service is: a named set of capabilities with a lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hearthnet.bus.capability import CapabilityDescriptor, Handler, ParamsPredicate


class Service(Protocol):
    name: str

    def capabilities(self) -> list[tuple[CapabilityDescriptor, Handler, ParamsPredicate | None]]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


Capabilities = list[tuple[CapabilityDescriptor, Handler, Callable[[dict[str, Any], dict[str, Any]], bool] | None]]

__all__ = ["Capabilities", "Service"]
