"""STATE messages paced by their size: the newest state held, never a stale one sent, the
held one written at the end."""

from __future__ import annotations

from tap_stripe.state_output import PacedStateWriter


class Sink:
    def __init__(self) -> None:
        self.states: list[dict] = []

    def write_message(self, message: object) -> None:
        self.states.append(dict(message.value))  # type: ignore[attr-defined]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_states_asked_sooner_than_the_last_ones_size_allows_wait_for_the_newest() -> None:
    sink, clock = Sink(), Clock()
    writer = PacedStateWriter(sink, bytes_per_second=100, clock=clock)
    writer.write_state({"n": 1})  # 8 bytes: the next one not before 0.08 s
    clock.now = 0.05
    writer.write_state({"n": 2})
    writer.write_state({"n": 3})
    assert sink.states == [{"n": 1}]
    clock.now = 0.1
    writer.write_state({"n": 4})
    assert sink.states == [{"n": 1}, {"n": 4}]


def test_the_held_state_goes_out_at_flush_and_an_unchanged_one_not_again() -> None:
    sink, clock = Sink(), Clock()
    writer = PacedStateWriter(sink, bytes_per_second=1, clock=clock)
    writer.write_state({"n": 1})
    writer.write_state({"n": 2})
    writer.flush()
    writer.flush()
    clock.now = 100.0
    writer.write_state({"n": 2})
    assert sink.states == [{"n": 1}, {"n": 2}]


def test_a_small_state_is_written_each_time_it_changes() -> None:
    sink, clock = Sink(), Clock()
    writer = PacedStateWriter(sink, clock=clock)
    for n in range(3):
        clock.now += 0.001
        writer.write_state({"n": n})
    assert [state["n"] for state in sink.states] == [0, 1, 2]
