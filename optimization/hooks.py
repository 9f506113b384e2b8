"""What the apps above ``optimization`` feed into its plans (the layer order forbids importing them): each registers
a callback here in its ``AppConfig.ready``.

- A *rate source* sets the spot offerings' ``interruption_rate`` of a cluster's problem:
  ``source(cluster, offerings) -> None`` (the interruptions app blends the Spot Advisor prior with what it observed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RateSource = Callable[[Any, list[dict[str, Any]]], None]

_rate_sources: dict[str, RateSource] = {}


def register_rate_source(name: str, source: RateSource) -> None:
    _rate_sources[name] = source


def rate_sources() -> list[RateSource]:
    return list(_rate_sources.values())
