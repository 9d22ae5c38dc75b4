"""Prompt parsing and the job primitives (cancel token, progress events)."""

from __future__ import annotations

import threading

import pytest

from ovpaint.core.errors import BadInput, Cancelled
from ovpaint.core.jobs import CancelToken, Progress, ProgressEvent
from ovpaint.core.prompt import MAX_CLASSES, MAX_NAME_CHARS, ClassQuery, parse_prompt


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty_prompt(text):
    with pytest.raises(BadInput, match="empty"):
        parse_prompt(text)


def test_only_separators():
    with pytest.raises(BadInput, match="only separators"):
        parse_prompt(" , ;\n | ,")


def test_separators_whitespace_duplicates_synonyms():
    got = parse_prompt("sky,  dog ;person  in red | man in red\nSky, DOG, car|car|CAR ,")
    assert got == [
        ClassQuery("sky", ("sky",)),
        ClassQuery("dog", ("dog",)),
        ClassQuery("person in red", ("person in red", "man in red")),
        ClassQuery("car", ("car",)),
    ]
    assert parse_prompt("|cat|") == [ClassQuery("cat", ("cat",))]


def test_long_names_and_many_classes():
    assert parse_prompt("a" * MAX_NAME_CHARS)[0].name == "a" * MAX_NAME_CHARS
    with pytest.raises(BadInput, match="characters long"):
        parse_prompt("x" * (MAX_NAME_CHARS + 1))
    many = ", ".join(f"class{i}" for i in range(MAX_CLASSES))
    assert len(parse_prompt(many)) == MAX_CLASSES
    with pytest.raises(BadInput, match="at most"):
        parse_prompt(many + ", one more")


def test_cancel_token_across_threads():
    token = CancelToken()
    token.check()
    assert not token.cancelled
    t = threading.Thread(target=token.cancel)
    t.start()
    t.join()
    assert token.cancelled
    with pytest.raises(Cancelled) as err:
        token.check()
    assert err.value.exit_code == 130


def test_progress_events_fraction_rate_eta():
    events: list[ProgressEvent] = []
    p = Progress()
    p.subscribe(events.append)
    p.stage("download", total=200, message="start")
    p.update(50)
    p.update(200, total=200)
    assert [e.stage for e in events] == ["download"] * 3
    assert events[0].done == 0 and events[0].total == 200 and events[0].message == "start"
    assert events[1].total == 200 and events[1].fraction == 0.25  # the stage's total is kept
    assert [e.elapsed for e in events] == sorted(e.elapsed for e in events)
    assert events[-1].fraction == 1.0
    e = ProgressEvent("s", 30, 120, elapsed=3.0)
    assert e.rate == 10 and e.eta == 9 and e.fraction == 0.25
    assert ProgressEvent("s", 5, None, elapsed=1.0).eta is None
    assert ProgressEvent("s", 5, None).fraction is None
    assert ProgressEvent("s", 0, 10, elapsed=0.0).rate is None
    assert ProgressEvent("s", 15, 10).fraction == 1.0  # clamped
