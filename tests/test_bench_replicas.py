"""bench/replicas.py: its figures from plain data, and (on PostgreSQL only) its quick mode end to end: one then
three `syncbot serve --role worker` processes deliver a small burst, each message once (about 30 s)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.replicas import duplicate_posts, per_channel, posted_by_process, run_figures, summarize
from tests.conftest import PG_ENV


def test_duplicates_count_messages_beyond_one_per_topic_in_a_channel() -> None:
    assert duplicate_posts({"C1": ["a", "b", "a", "a"], "C2": ["a", None, None]}) == 2
    assert duplicate_posts({"C1": ["a", "b"], "C2": ["a", "b"]}) == 0  # the same topic in two channels is two


def test_channels_off_the_expected_count_are_named() -> None:
    assert per_channel({"C1": 8, "C2": 7, "C3": 9}, 8) == {"min": 7, "max": 9, "expected": 8,
                                                           "channels_off": {"C2": 7, "C3": 9}}
    assert per_channel({}, 8)["channels_off"] == {}


def test_posts_per_process_are_counted_from_each_log() -> None:
    logs = ["x event=slack_posted a\ny event=slack_posted b\n", "", "event=slack_posted"]
    assert posted_by_process(logs) == [2, 0, 1]


def _run(n: int, seconds: float, *, dup: bool = False) -> dict[str, object]:
    topics: dict[str, list[str | None]] = {"C1": ["a", "b"], "C2": ["c", "a" if not dup else "c"]}
    return run_figures(replicas=n, messages_expected=4, seconds_to_drain=seconds, topics_by_channel=topics,
                       calls=[("chat.postMessage", 200, True)] * 4 + [("chat.postMessage", 429, False)],
                       logs=["event=slack_posted\n" * 4] if n == 1 else ["event=slack_posted\n" * 2] * 2,
                       per_account=2, notifications_left=0)


def test_a_run_s_figures_and_the_ratio_of_the_medians() -> None:
    one = _run(1, 2.0)
    assert (one["messages_per_second"], one["throttled_429"], one["duplicate_posts"], one["ok"]) == (2.0, 1, 0, True)
    assert _run(2, 1.0, dup=True)["ok"] is False  # a duplicate post fails the run
    summary = summarize([_run(1, 2.0), _run(1, 4.0), _run(1, 1.0), _run(2, 1.0), _run(2, 0.5), _run(2, 1.0)])
    assert summary["medians"]["1"]["messages_per_second"] == 2.0
    assert summary["medians"]["2"]["messages_per_second"] == 4.0
    assert (summary["throughput_ratio"], summary["throughput_ratio_of"]) == (2.0, "2 vs 1")
    assert summarize([_run(3, 1.0)])["throughput_ratio"] is None


@pytest.mark.skipif(not os.environ.get(PG_ENV), reason="the replicas bench needs PostgreSQL")
def test_quick_mode_delivers_every_message_once_with_one_and_three_workers(tmp_path: Path) -> None:
    from bench.replicas import main

    output = tmp_path / "replicas.quick.json"
    code = main(["--quick", "--pg-url", os.environ[PG_ENV], "--output", str(output)])
    report = json.loads(output.read_text())
    runs = report["runs"]
    assert [r["replicas"] for r in runs] == [1, 3]
    for r in runs:
        assert r["duplicate_posts"] == 0 and r["notifications_left"] == 0, r
        assert r["messages_posted"] == r["messages_expected"] == 40, r
        assert r["messages_per_channel"]["channels_off"] == {}, r
        assert sum(r["posted_by_process"]) == 40 and len(r["posted_by_process"]) == r["replicas"], r
    assert code == 0, runs  # and Slack answered no 429
    assert report["throughput_ratio"] is not None
