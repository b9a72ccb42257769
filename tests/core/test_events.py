"""The event bus: subscription by kind, unsubscribing, and isolation of failing subscribers."""

from __future__ import annotations

import logging

import pytest

from zetl_nb.core.events import Event, EventBus


def test_subscribe_by_kind() -> None:
    bus = EventBus()
    states: list[Event] = []
    batches: list[Event] = []
    bus.subscribe(states.append, kind="state")
    bus.subscribe(batches.append, kind="batch")
    e1 = Event("state", {"status": "ACTIVE"})
    e2 = Event("batch", {"rows": 3})
    e3 = Event("progress", {"pct": 50})
    for e in (e1, e2, e3):
        bus.publish(e)
    assert states == [e1]
    assert batches == [e2]


def test_subscriber_without_kind_sees_everything_in_order() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    events = [Event("state", {}), Event("batch", {}), Event("progress", {})]
    for e in events:
        bus.publish(e)
    assert seen == events


def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    seen: list[str] = []
    unsubscribe = bus.subscribe(lambda e: seen.append(e.kind), kind="state")
    bus.publish(Event("state", {}))
    unsubscribe()
    bus.publish(Event("state", {}))
    assert seen == ["state"]


def test_unsubscribe_twice_is_harmless_and_leaves_others() -> None:
    bus = EventBus()
    a: list[Event] = []
    b: list[Event] = []
    unsubscribe_a = bus.subscribe(a.append)
    bus.subscribe(b.append)
    unsubscribe_a()
    unsubscribe_a()
    bus.publish(Event("state", {}))
    assert a == []
    assert len(b) == 1


def test_same_handler_twice_is_delivered_twice_and_unsubscribed_separately() -> None:
    bus = EventBus()
    seen: list[Event] = []
    first = bus.subscribe(seen.append)
    bus.subscribe(seen.append)
    bus.publish(Event("state", {}))
    assert len(seen) == 2
    first()
    bus.publish(Event("state", {}))
    assert len(seen) == 3


def test_failing_subscriber_does_not_stop_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    before: list[Event] = []
    after: list[Event] = []

    def boom(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(before.append)
    bus.subscribe(boom)
    bus.subscribe(after.append)
    event = Event("state", {"status": "FAILED"})
    with caplog.at_level(logging.ERROR, logger="zetl_nb.core.events"):
        bus.publish(event)  # must not raise
    assert before == [event]
    assert after == [event]
    assert any("event subscriber failed on state" in r.getMessage() for r in caplog.records)
    assert any(r.exc_info and "subscriber bug" in str(r.exc_info[1]) for r in caplog.records)


def test_subscriber_may_unsubscribe_while_being_called() -> None:
    bus = EventBus()
    seen: list[str] = []
    unsubscribe = bus.subscribe(lambda e: (seen.append("once"), unsubscribe()))
    bus.subscribe(lambda e: seen.append("always"))
    bus.publish(Event("state", {}))
    bus.publish(Event("state", {}))
    assert seen == ["once", "always", "always"]


def test_event_is_frozen_and_timestamped() -> None:
    event = Event("state", {"status": "ACTIVE"})
    assert event.time > 0
    with pytest.raises(AttributeError):
        event.kind = "batch"  # type: ignore[misc]
