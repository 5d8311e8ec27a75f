"""What each route asks of the front door: who may call it, how large a body it takes, and
whether it counts against admission. Declared beside each route with `@gated(...)`; the front
door (serving/http/ingress.py) enforces it, and refuses to start if any route has no gate, so a
new route cannot slip past the checks.

A prediction body may be as large as `max_items` inputs of its model need, written as JSON at
up to JSON_BYTES_PER_VALUE bytes a number (or as binary tensors at 8 bytes a value), and never
larger than `max_body_bytes`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from models.spec import SPECS, ModelSpec
from serving.settings import Settings

JSON_BYTES_PER_VALUE = 24  # "-0.12345678901234567e-10," is 24 characters
BINARY_BYTES_PER_VALUE = 8  # FP64, the widest type a client may send
HEAD_ROOM = 64 * 1024  # the JSON around the numbers: names, shapes, the v2 header
NO_BODY = 64 * 1024  # routes that take no body still read (and ignore) this much

Access = Literal["open", "predict", "admin"]
Body = Literal["none", "json", "v2", "upload"]


@dataclass(frozen=True, slots=True)
class Gate:
    access: Access = "open"  # predict: SERVING_API_KEYS; admin: SERVING_ADMIN_KEY
    body: Body = "none"  # what sizes the body limit
    family: str | None = None  # json bodies: the family whose models size the limit
    admit: bool = False  # counts against max_in_flight, once the body is in
    direct: bool = False  # called straight from the front door, without FastAPI's stack


OPEN = Gate()
ADMIN = Gate("admin")
UPLOAD = Gate("predict", "upload", "digits", admit=True)
V2_INFER = Gate("predict", "v2", admit=True, direct=True)


def predict_json(family: str) -> Gate:
    return Gate("predict", "json", family, admit=True, direct=True)


F = TypeVar("F", bound=Callable[..., object])


def gated(gate: Gate) -> Callable[[F], F]:
    """Declare the route's gate (put it under the route decorator)."""

    def mark(endpoint: F) -> F:
        endpoint.__gate__ = gate  # type: ignore[attr-defined]
        return endpoint

    return mark


def gate_of(endpoint: object) -> Gate | None:
    return getattr(endpoint, "__gate__", None)


def _inputs_bytes(spec: ModelSpec, max_items: int, per_value: int) -> int:
    return HEAD_ROOM + max_items * spec.input.size * per_value


def body_limit(
    gate: Gate, settings: Settings, model: str | None = None, specs: dict[str, ModelSpec] = SPECS
) -> int:
    """The largest body this gate lets in; `model` is the one the path names (v2), `specs`
    the models that may be served (built-in ones and variants described by their cards)."""
    cap = settings.max_body_bytes
    if gate.body == "upload":
        return min(cap, settings.max_upload_bytes)
    if gate.body == "json":
        family = [s for s in specs.values() if s.family == gate.family]
        need = max(_inputs_bytes(s, settings.max_items, JSON_BYTES_PER_VALUE) for s in family)
        return min(cap, need)
    if gate.body == "v2":
        spec = specs.get(model or "")
        if spec is None:
            return NO_BODY  # an unknown model: 404 follows
        per_value = max(JSON_BYTES_PER_VALUE, BINARY_BYTES_PER_VALUE)
        return min(cap, _inputs_bytes(spec, settings.max_items, per_value))
    return NO_BODY
