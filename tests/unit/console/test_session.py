"""Console sessions: random cookie tokens, sliding expiry, sign-out, bounded memory."""

from __future__ import annotations

from cometgate.console.session import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_slides_with_use_and_ends_after_idle_time() -> None:
    clock = Clock()
    store = SessionStore(lifetime=60, clock=clock)
    token, session = store.open()
    clock.now += 59
    assert store.touch(token) is session
    clock.now += 59  # 118 s after opening, 59 s after the last use
    assert store.touch(token) is session
    clock.now += 60
    assert store.touch(token) is None
    clock.now -= 60
    assert store.touch(token) is None  # forgotten, not only hidden


def test_tokens_are_random_and_unknown_ones_open_nothing() -> None:
    store = SessionStore()
    first, one = store.open()
    second, two = store.open()
    assert first != second and one.csrf_token != two.csrf_token
    assert len(first) == 43 and len(one.csrf_token) == 43  # 256 bits, URL-safe base64
    assert store.touch(first[:-1] + ("A" if first[-1] != "A" else "B")) is None
    assert store.touch("") is None and store.touch(None) is None


def test_the_store_keeps_digests_not_tokens() -> None:
    store = SessionStore()
    token, _ = store.open()
    assert token not in repr(store._sessions)


def test_closing_forgets_the_session() -> None:
    store = SessionStore()
    token, _ = store.open()
    store.close(token)
    assert store.touch(token) is None
    store.close(token)  # twice is fine
    store.close(None)


def test_the_least_recently_used_session_goes_first_when_full() -> None:
    store = SessionStore(capacity=2)
    first, _ = store.open()
    second, _ = store.open()
    assert store.touch(first) is not None  # now the second is the least recent
    third, _ = store.open()
    assert store.touch(second) is None
    assert store.touch(first) is not None and store.touch(third) is not None


def test_csrf_tokens_match_only_exactly() -> None:
    _, session = SessionStore().open()
    assert session.csrf_matches(session.csrf_token)
    for wrong in (None, "", session.csrf_token[:-1], session.csrf_token + "x", "é"):
        assert not session.csrf_matches(wrong)
