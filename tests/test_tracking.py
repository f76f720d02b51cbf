"""Tracks between frames, votes over identities, and the bounded stream registry: pure
logic, boxes in and decisions out."""

from __future__ import annotations

import threading

import pytest

from facerec.streams import StreamRegistry
from facerec.tracking import PENDING, RECOGNIZED, UNKNOWN, Tracker, TrackerConfig, Vote, iou

A = (100, 100, 200, 200)
B = (400, 100, 500, 200)


def shifted(box, dx=0, dy=0):
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def identify_all(tracker, boxes, labels):
    """One frame: every face that asks to be identified gets the vote of its label."""
    assignments = tracker.step(boxes)
    for a, label in zip(assignments, labels):
        if a.identify:
            tracker.record(a.track, Vote(label, 0.8 if label else 0.2))
    return assignments


def test_iou():
    assert iou(A, A) == 1.0
    assert iou(A, B) == 0.0
    assert iou(A, shifted(A, 50)) == pytest.approx(50 * 100 / (2 * 100 * 100 - 50 * 100))
    assert iou(A, (150, 150, 150, 150)) == 0.0  # empty box


def test_a_face_keeps_its_track_while_it_moves_and_others_get_their_own():
    tracker = Tracker()
    first = tracker.step([A, B])
    assert [a.new for a in first] == [True, True]
    ids = [a.track.track_id for a in first]
    assert len(set(ids)) == 2
    # Both move a little and come back in the other order: matched by overlap, not order.
    second = tracker.step([shifted(B, 10), shifted(A, -10, 5)])
    assert [a.track.track_id for a in second] == [ids[1], ids[0]]
    assert not any(a.new for a in second)


def test_a_track_survives_max_missed_frames_then_ends():
    tracker = Tracker(TrackerConfig(max_missed=2))
    track_id = tracker.step([A])[0].track.track_id
    tracker.step([])
    tracker.step([])
    assert tracker.step([A])[0].track.track_id == track_id  # missed 2: still there
    tracker.step([])
    tracker.step([])
    tracker.step([])
    again = tracker.step([A])[0]
    assert again.new and again.track.track_id != track_id


def test_a_far_jump_starts_a_new_track():
    tracker = Tracker()
    first = tracker.step([A])[0].track.track_id
    assert tracker.step([shifted(A, 90)])[0].new  # IoU 10/190 < 0.3
    assert tracker.step([shifted(A, 90)])[0].track.track_id != first


def test_the_name_needs_a_majority_of_the_window_and_does_not_flicker():
    tracker = Tracker(TrackerConfig(window=5, reverify_every=1))
    statuses = []
    for label in ["ann", "ann", "bob", "ann", "ann", "bob", "ann"]:
        a = identify_all(tracker, [A], [label])[0]
        statuses.append((tracker.decision(a.track).status, tracker.decision(a.track).user_id))
    # Pending until "ann" holds 3 of 5 votes; one stray "bob" then changes nothing.
    assert statuses[:3] == [(PENDING, "ann")] * 3
    assert statuses[3:] == [(RECOGNIZED, "ann")] * 4


def test_no_majority_in_a_full_window_is_unknown():
    tracker = Tracker(TrackerConfig(window=4, reverify_every=1))
    for label in ["ann", "bob", "cid", "ann"]:
        a = identify_all(tracker, [A], [label])[0]
    decision = tracker.decision(a.track)
    assert decision.status == UNKNOWN and decision.user_id is None and decision.cast == 4


def test_a_stranger_is_decided_unknown():
    tracker = Tracker(TrackerConfig(window=5))
    for _ in range(3):
        a = identify_all(tracker, [A], [None])[0]
    decision = tracker.decision(a.track)
    assert decision.status == UNKNOWN and decision.votes == 3 and decision.score is None


def test_a_settled_still_face_is_only_tracked_and_reverified_every_k_frames():
    tracker = Tracker(TrackerConfig(window=5, reverify_every=4))
    identified = [identify_all(tracker, [A], ["ann"])[0].identify for _ in range(15)]
    # 3 identifications to settle, then one every 4th frame.
    assert identified == [True, True, True, False, False, False, True, False, False, False,
                          True, False, False, False, True]
    a = tracker.step([A])[0]
    assert tracker.decision(a.track).score == pytest.approx(0.8)


def test_a_moving_face_is_identified_again():
    tracker = Tracker(TrackerConfig(window=3, reverify_every=100, still_iou=0.8))
    for _ in range(2):
        identify_all(tracker, [A], ["ann"])
    assert not tracker.step([shifted(A, 2)])[0].identify  # moved a little
    assert tracker.step([shifted(A, 20)])[0].identify  # IoU with the identified box < 0.8


def test_a_disagreeing_look_is_followed_up_at_once_and_can_flip_the_name():
    tracker = Tracker(TrackerConfig(window=5, reverify_every=10))
    for _ in range(5):
        identify_all(tracker, [A], ["ann"])
    a = identify_all(tracker, [A], ["bob"])[0]
    assert not a.identify  # settled: this frame was only tracked, no "bob" vote cast
    for _ in range(20):  # until the periodic re-verification
        if identify_all(tracker, [A], ["bob"])[0].identify:
            break
    # The first "bob" look breaks the agreement: every frame is identified until it settles.
    # (votes: ann ann ann ann bob → ann ann ann bob bob → ann ann bob bob bob).
    flow = [identify_all(tracker, [A], ["bob"])[0] for _ in range(2)]
    assert all(f.identify for f in flow)
    assert tracker.decision(flow[-1].track).user_id == "bob"
    assert tracker.decision(flow[-1].track).status == RECOGNIZED
    assert not tracker.step([A])[0].identify  # settled again


def test_config_is_checked():
    with pytest.raises(ValueError):
        TrackerConfig(window=0)
    with pytest.raises(ValueError):
        TrackerConfig(match_iou=0)
    assert TrackerConfig(window=5).quorum == 3 and TrackerConfig(window=4).quorum == 3


# --- the registry of streams ----------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_streams_keep_their_tracker_and_expire_when_idle():
    clock = Clock()
    registry = StreamRegistry(idle_seconds=30, clock=clock)
    with registry.open("cam1") as (tracker, created):
        assert created
        tracker.step([A])
    clock.now = 29
    with registry.open("cam1") as (tracker, created):
        assert not created and tracker.frames == 1
    clock.now = 58
    with registry.open("cam2") as (_, created):
        assert created
    assert "cam1" in registry
    clock.now = 60  # 31 s after cam1's last frame
    with registry.open("cam2") as (_, created):
        assert not created
    assert "cam1" not in registry and len(registry) == 1


def test_streams_are_bounded_least_recently_used_first():
    registry = StreamRegistry(max_streams=2, clock=Clock())
    for name in ("a", "b", "a", "c"):
        with registry.open(name):
            pass
    assert "a" in registry and "c" in registry and "b" not in registry
    assert registry.forget("a") and not registry.forget("a")


def test_track_ids_are_unique_across_streams():
    registry = StreamRegistry()
    ids = []
    for name in ("a", "b"):
        with registry.open(name) as (tracker, _):
            ids.append(tracker.step([A])[0].track.track_id)
    assert ids[0] != ids[1]


def test_frames_of_one_stream_run_one_at_a_time():
    registry = StreamRegistry()
    inside = []
    overlap = []
    go = threading.Barrier(4)

    def send():
        go.wait()
        for _ in range(50):
            with registry.open("cam") as (tracker, _):
                inside.append(1)
                if len(inside) > 1:
                    overlap.append(1)
                tracker.step([A])
                inside.pop()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlap
    with registry.open("cam") as (tracker, _):
        assert tracker.frames == 200
