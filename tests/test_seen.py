"""The seen-keys bitmap says "new" only for keys no earlier key shares a bit with."""

from __future__ import annotations

from emugen.db.seen import SeenKeys


def test_a_key_reads_as_new_once_and_a_repeat_reads_as_seen_in_the_same_call_or_later():
    seen = SeenKeys()
    assert seen.first_seen(["a", "b", "a"]).tolist() == [True, True, False]
    assert seen.first_seen(["b", "c", "c"]).tolist() == [False, True, False]


def test_a_bitmap_of_eight_bits_calls_a_ninth_key_seen_but_never_a_repeat_new():
    seen = SeenKeys(8)
    new = seen.first_seen([f"k{n}" for n in range(9)]).tolist()
    assert 1 <= sum(new) <= 8
    assert not any(seen.first_seen([f"k{n}" for n in range(9)]).tolist())


def test_an_empty_call_marks_nothing():
    seen = SeenKeys()
    assert seen.first_seen([]).tolist() == []
    assert seen.first_seen(["x"]).tolist() == [True]
