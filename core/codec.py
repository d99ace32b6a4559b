"""Event encoding: msgspec JSON with stable topics.

The eventsourcing library would name an event by its Python path (`core.settlement:Settlement.
Settled`), which breaks stored events when code moves. Here every event class is registered
under a stable topic (`"Settlement.Settled"`), and the payload is encoded with msgspec and decoded
back into its declared field types. Evolve an event only by adding fields with defaults, or by a
class version with an upcaster (the library's `upcast_vN_vN+1`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import msgspec
from eventsourcing.domain import DomainEvent, DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

_T = TypeVar("_T", bound=type)

_TOPIC_BY_CLASS: dict[type, str] = {}
_CLASS_BY_TOPIC: dict[str, type] = {}
_AGGREGATE_TOPIC_BY_PATH: dict[str, str] = {}
_AGGREGATE_PATH_BY_TOPIC: dict[str, str] = {}
_ENVELOPE_FIELDS = ("originator_id", "originator_version")


class UnknownTopic(LookupError):
    """A stored event names a topic no class is registered for."""


def event_topic(topic: str) -> Callable[[_T], _T]:
    """Class decorator: register a domain event class under a stable topic."""

    def register(cls: _T) -> _T:
        if topic in _CLASS_BY_TOPIC and _CLASS_BY_TOPIC[topic] is not cls:
            raise AssertionError(f"topic {topic!r} registered twice")
        _TOPIC_BY_CLASS[cls] = topic
        _CLASS_BY_TOPIC[topic] = cls
        return cls

    return register


def aggregate_topic(topic: str) -> Callable[[_T], _T]:
    """Class decorator: a stable name for an aggregate class (stored in its Created event),
    and for each event class declared in its body: `"<topic>.<EventName>"`."""

    def register(cls: _T) -> _T:
        _AGGREGATE_TOPIC_BY_PATH[get_topic(cls)] = topic
        _AGGREGATE_PATH_BY_TOPIC[topic] = get_topic(cls)
        for name, value in vars(cls).items():
            if isinstance(value, type) and issubclass(value, DomainEvent):
                event_topic(f"{topic}.{name}")(value)
        return cls

    return register


def topic_of(cls: type) -> str:
    try:
        return _TOPIC_BY_CLASS[cls]
    except KeyError:
        raise AssertionError(f"event class {cls.__qualname__} has no stable topic") from None


def class_of(topic: str) -> type:
    try:
        return _CLASS_BY_TOPIC[topic]
    except KeyError:
        raise UnknownTopic(f"no event class for topic {topic!r}") from None


def registered_topics() -> dict[str, type]:
    return dict(_CLASS_BY_TOPIC)


@cache
def _decoder(cls: type) -> msgspec.json.Decoder[Any]:
    """The typed decoder of one event class's payload. A TypedDict decodes straight into the
    event's __dict__, typed and checked, with unknown fields ignored: half the cost of a Struct
    copied into a dict. A field added later with a default is optional: an event stored before
    it has no key for it, and the class attribute (the default) answers in its place."""
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: hints[f.name] if f.default is dataclasses.MISSING else typing.NotRequired[hints[f.name]]
        for f in dataclasses.fields(cls)
        if f.name not in _ENVELOPE_FIELDS
    }
    return msgspec.json.Decoder(typing.TypedDict(f"{cls.__name__}Payload", fields))  # type: ignore[operator]


_ENCODER = msgspec.json.Encoder(order="deterministic")


def stored_event(originator_id: Any, originator_version: int, topic: str, state: bytes) -> StoredEvent:
    """`StoredEvent(originator_id, originator_version, topic, state)`, made without its frozen
    dataclass `__init__` (an `object.__setattr__` a field): a claim makes three or four."""
    made = object.__new__(StoredEvent)
    fields = made.__dict__
    fields["originator_id"] = originator_id
    fields["originator_version"] = originator_version
    fields["topic"] = topic
    fields["state"] = state
    return made


class MsgspecTranscoder(Transcoder):
    """Untyped msgspec JSON; the mapper below does the typed decoding."""

    def encode(self, obj: Any) -> bytes:
        return _ENCODER.encode(obj)

    def decode(self, data: bytes) -> Any:
        return msgspec.json.decode(data)


class EventMapper(Mapper[Any]):
    """Maps domain events to stored events with stable topics and msgspec payloads."""

    def __init__(self) -> None:
        super().__init__(transcoder=MsgspecTranscoder())

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        topic = topic_of(type(domain_event))
        if "originator_topic" in state:
            state["originator_topic"] = _AGGREGATE_TOPIC_BY_PATH[state["originator_topic"]]
        return stored_event(originator_id, originator_version, topic, _ENCODER.encode(state))

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        cls = class_of(stored_event.topic)
        state = _decoder(cls).decode(stored_event.state)
        if "originator_topic" in state:
            state["originator_topic"] = _AGGREGATE_PATH_BY_TOPIC[state["originator_topic"]]
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        event: DomainEventProtocol[Any] = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event
