"""Tiny helpers for reading typed settings from the environment."""

import os
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_model_prices(raw: str) -> dict[str, tuple[Decimal, Decimal]]:
    """ "model=input/output,..." in USD per million tokens → {model: (input, output)}."""
    prices: dict[str, tuple[Decimal, Decimal]] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        model, _, pair = item.partition("=")
        given, _, taken = pair.partition("/")
        try:
            prices[model.strip()] = (Decimal(given.strip()), Decimal(taken.strip()))
        except InvalidOperation as exc:
            raise ImproperlyConfigured(
                f"AGENT_MODEL_PRICES: {item!r} must look like model=0.15/0.60 (USD per million tokens)"
            ) from exc
    return prices
