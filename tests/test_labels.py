"""``int4rt.decode.labels``: persistent, interned label sequences behave like tuples."""

from __future__ import annotations

import gc

from int4rt.decode.labels import NO_FRAMES, NO_LABELS


def test_labels_are_interned_and_read_like_tuples():
    a = NO_LABELS.append(3).append(5)
    b = NO_LABELS.append(3).append(5)
    assert a is b and hash(a) == hash(b)
    assert list(a) == [3, 5] and tuple(a) == (3, 5) and len(a) == 2 and a
    assert a[-1] == 5 and a[:-1] is NO_LABELS.append(3) and list(a[:-1]) == [3]
    assert not NO_LABELS and len(NO_LABELS) == 0 and list(NO_LABELS) == []
    assert NO_LABELS.append(5) is not NO_LABELS.append(3).append(5)


def test_chains_share_prefixes_and_are_not_interned():
    frames = NO_FRAMES.append(0).append(4)
    assert list(frames) == [0, 4] and list(frames.append(9)) == [0, 4, 9]
    assert NO_FRAMES.append(1) is not NO_FRAMES.append(1)


def test_interning_forgets_dead_sequences():
    long = NO_LABELS
    for token in range(1000):
        long = long.append(token % 7)
    assert list(long)[:8] == [0, 1, 2, 3, 4, 5, 6, 0] and len(long) == 1000
    from int4rt.decode import labels

    before = len(labels._INTERNED)
    del long
    gc.collect()
    assert len(labels._INTERNED) <= before - 1000
