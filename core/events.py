"""The event bases of every aggregate here: the library's, replayed more cheaply.

Loading an aggregate applies each of its stored events (`mutate`). The library's
`Aggregate.Created.mutate` inspects the aggregate's `__init__` signature and filters the event's
fields on every event it replays (measured: a sixth of a bulk load of member-years and accounts);
here the names `__init__` takes are worked out once per event class. `Event.mutate` makes the
library's checks (same aggregate, next version) on plain attributes instead of properties.

Making a new event, the library runs its frozen dataclass `__init__` (an `object.__setattr__` a
field) and, for a new aggregate, a pass over the arguments to pick `create_id`'s; `Aggregate`
here fills the event's `__dict__` in one update, as the codec does with a stored event.
"""

from __future__ import annotations

import dataclasses
import inspect
from functools import cache
from typing import Any

from eventsourcing import domain
from eventsourcing.domain import OriginatorIDError, OriginatorVersionError
from eventsourcing.utils import get_topic, resolve_topic

_ENVELOPE = frozenset(("originator_id", "originator_version", "timestamp", "originator_topic"))


@cache
def _aggregate_class(originator_topic: str) -> type[Any]:
    return resolve_topic(originator_topic)


@cache
def _init_names(event_class: type[Any], aggregate_class: type[Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The event fields `__init__` takes: those every stored event has, and those added later with
    a default (an event stored before has no key for them: `__init__`'s own default applies)."""
    params = inspect.signature(aggregate_class.__init__).parameters
    if "id" in params:
        raise AssertionError(f"{aggregate_class.__name__}.__init__ takes no id here: ids come from create_id")
    taken = [f for f in dataclasses.fields(event_class) if f.name in params and f.name != "self"]
    later = tuple(f.name for f in taken if f.default is not dataclasses.MISSING)
    return tuple(f.name for f in taken if f.name not in later), later


class Created(domain.Aggregate.Created):
    def mutate(self, aggregate: Any) -> Any:
        assert aggregate is None
        state = self.__dict__
        cls: Any = _aggregate_class(state["originator_topic"])
        new = cls.__new__(cls)
        new.__base_init__(state["originator_id"], state["originator_version"], state["timestamp"])
        always, later = _init_names(type(self), cls)
        given = {name: state[name] for name in always}
        given.update((name, state[name]) for name in later if name in state)
        new.__init__(**given)
        self.apply(new)
        return new


class Event(domain.Aggregate.Event):
    def mutate(self, aggregate: Any) -> Any:
        state = self.__dict__
        version = state["originator_version"]
        if version != aggregate._version + 1:
            raise OriginatorVersionError(version, aggregate._version + 1)
        if state["originator_id"] != aggregate._id:
            raise OriginatorIDError(state["originator_id"], aggregate._id)
        self.apply(aggregate)
        aggregate._version = version
        aggregate._modified_on = state["timestamp"]
        return aggregate


@cache
def _payload_fields(event_class: type) -> tuple[frozenset[str], frozenset[str], dict[str, Any]]:
    """An event class's own fields: every name, the names with no default, and the defaults."""
    fields = [f for f in dataclasses.fields(event_class) if f.name not in _ENVELOPE]
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    if any(f.default_factory is not dataclasses.MISSING for f in fields):
        raise AssertionError(f"{event_class.__qualname__}: a field with a default factory")
    return frozenset(f.name for f in fields), frozenset(f.name for f in fields) - defaults.keys(), defaults


def _new_event(event_class: Any, given: dict[str, Any], envelope: dict[str, Any]) -> Any:
    """The event `event_class(**given, **envelope)` would make (the same `__dict__`), made without
    its dataclass `__init__`; given names it does not take (or not all it needs): that `__init__`,
    for its TypeError."""
    names, required, defaults = _payload_fields(event_class)
    keys = given.keys()
    if not (required <= keys <= names):
        return event_class(**given, **envelope)
    event: Any = object.__new__(event_class)
    state = event.__dict__
    if len(keys) < len(names):
        state.update(defaults)
    state.update(given)
    state.update(envelope)
    state["timestamp"] = event_class.create_timestamp()
    return event


@cache
def _created_event_class(aggregate_class: type[Any]) -> type[Any] | None:
    """The one "created" event class the library would make `aggregate_class(...)` with (None when
    it has none or several: the library's own call then names the mistake)."""
    classes = domain._created_event_classes.get(aggregate_class, ())
    return classes[0] if len(classes) == 1 else None


class MetaAggregate(domain.MetaAggregate):
    """`Aggregate(name=value, ...)` made without the library's pass matching the arguments to
    `__init__`'s signature (8.5 against 5.8 µs an aggregate, about one a claim): `_new_event`
    checks the names against the event's fields, and wrong ones still raise the TypeError of the
    event's own `__init__`. Positional arguments take the library's way."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        created = _created_event_class(cls)
        if args or created is None:
            return super().__call__(*args, **kwargs)
        return cls._create(created, **kwargs)


class Aggregate(domain.Aggregate, metaclass=MetaAggregate):
    """The library's aggregate, its events made by `_new_event`. Every aggregate's id comes from
    its `create_id` (a business key), never an `id` argument."""

    @classmethod
    def _create(cls, event_class: type[Any], *, id: Any = None, **kwargs: Any) -> Any:
        if id is not None:
            raise AssertionError(f"{cls.__name__} takes no id: ids come from create_id")
        names = _create_id_names(cls)
        originator_id = cls.create_id(**{name: value for name, value in kwargs.items() if name in names})
        envelope = {"originator_topic": get_topic(cls), "originator_id": originator_id, "originator_version": 1}
        event = _new_event(event_class, kwargs, envelope)
        new = event.mutate(None)
        new._pending_events.append(event)
        return new

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        event = _new_event(event_class, kwargs, {"originator_id": self._id, "originator_version": self._version + 1})
        event.mutate(self)
        self._pending_events.append(event)


@cache
def _create_id_names(aggregate_class: type[Any]) -> frozenset[str]:
    """The arguments `create_id` is given: those it names (as the library passes them)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(aggregate_class.create_id).parameters.values()
    return frozenset(p.name for p in params if p.kind in kinds)
