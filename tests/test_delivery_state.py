"""What every replica's notifier shares in the database (`bot.delivery_state`): a channel's pace and pause taken
by one replica hold for another; a topic one replica delivers is skipped by the others (PostgreSQL)."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from bot.delivery_state import ChannelPace, TopicClaims, shared_by_replicas
from tests.conftest import PG_ENV


def test_a_channels_turn_taken_by_one_replica_holds_for_the_other(services: Any) -> None:
    one, two = ChannelPace(services.sessions), ChannelPace(services.sessions)
    assert one.take("C1", 30.0) is None  # the first post goes
    wait = two.take("C1", 30.0)  # the other replica's post in the same channel waits its turn
    assert wait is not None and 29.0 < wait[0] <= 30.0 and wait[1].startswith("paced")
    assert two.take("C2", 30.0) is None  # another channel goes on
    assert one.waiting("C2") is not None and one.waiting("C3") is None


def test_a_pause_one_replica_met_stops_the_others_posts_until_it_ends(services: Any) -> None:
    one, two = ChannelPace(services.sessions), ChannelPace(services.sessions)
    one.pause("C1", 120.0, "Slack asked to wait (ratelimited)")
    wait = two.take("C1", 0.001)
    assert wait is not None and 119.0 < wait[0] <= 120.0 and "ratelimited" in wait[1]
    two.pause("C1", 5.0, "shorter")  # a shorter pause never cuts a longer one short
    left = one.waiting("C1")
    assert left is not None and left[0] > 100.0 and "ratelimited" in left[1]
    one.pause("C9", 0.0, "over at once")  # a pause that ended lets the channel go
    assert two.take("C9", 1.0) is None


def test_many_replicas_taking_one_channels_turn_at_once_let_one_through(services: Any) -> None:
    """Eight threads with their own ChannelPace take the same channel's turn at the same moment: one goes."""
    start, went = threading.Barrier(8), []

    def take() -> None:
        pace = ChannelPace(services.sessions)
        start.wait()
        if pace.take("CBUSY", 60.0) is None:
            went.append(1)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(went) == 1


@pytest.mark.skipif(not os.environ.get(PG_ENV), reason="topic claims between replicas need PostgreSQL")
def test_a_topic_one_replica_delivers_is_skipped_by_the_other_until_it_is_done(services: Any) -> None:
    assert shared_by_replicas(services.sessions)
    one, two = TopicClaims(services.sessions, True), TopicClaims(services.sessions, True)
    with one.claim("7:record:3:contact:12") as mine:
        assert mine
        with two.claim("7:record:3:contact:12") as theirs:
            assert not theirs
        with two.claim("7:record:3:contact:13") as other:
            assert other  # another topic is free
    with two.claim("7:record:3:contact:12") as theirs:
        assert theirs  # released when the first was done
