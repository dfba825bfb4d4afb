"""A Gemini upstream's own copies of gateway caches (providers/gemini_caches), against the
fake Gemini server: made once per credential, named by later requests, one copy kept when two
requests race, and the prefix itself when the upstream will not keep it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from tests.contract.upstreams import served
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.unit.providers.test_gemini import TARGET, Server, collect

from cometgate.providers.base import CachedPrefixCall, RawCall, Target
from cometgate.providers.gemini_caches import credential_fingerprint

PREFIX = {"contents": [{"role": "user", "parts": [{"text": "a long handbook text"}]}],
          "systemInstruction": {"parts": [{"text": "be brief"}]}}
OWN = {"contents": [{"role": "user", "parts": [{"text": "when?"}]}]}
MERGED = orjson.dumps({**PREFIX, "contents": [*PREFIX["contents"], *OWN["contents"]]})


class Copies:
    """The gateway's memory of copies, in a dict; `lose_race` makes the next remember lose
    to a copy another request made first."""

    def __init__(self) -> None:
        self.names: dict[tuple[str, str, str], str] = {}
        self.lose_race: str | None = None

    async def copy_of(self, cache_id: str, provider: str, credential: str) -> str | None:
        return self.names.get((cache_id, provider, credential))

    async def forget_copy(self, cache_id: str, provider: str, credential: str) -> None:
        del self.names[(cache_id, provider, credential)]

    async def remember_copy(self, cache_id: str, provider: str, credential: str,
                            upstream_name: str) -> bool:
        if self.lose_race is not None:
            self.names[(cache_id, provider, credential)] = self.lose_race
            return False
        self.names[(cache_id, provider, credential)] = upstream_name
        return True


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    fake = FakeGeminiUpstream()
    async with served(fake.app) as (url,):
        yield Server(fake, url)


def call(copies: Copies, method: str = "generateContent", alt: str | None = None) -> RawCall:
    use = CachedPrefixCall("c1", PREFIX, "2030-01-01T00:00:00Z", copies)
    return RawCall(MERGED, "v1beta", method, alt, cache=use)


async def test_the_copy_is_made_once_and_named_after(server: Server) -> None:
    copies = Copies()
    provider = server.provider()
    try:
        for _ in range(2):
            await provider.forward(call(copies), TARGET)
    finally:
        await provider.aclose()
    made = [seen for seen in server.fake.requests if seen.path == "/v1beta/cachedContents"]
    assert len(made) == 1
    assert orjson.loads(made[0].body) == {"model": "models/gemini-up", **PREFIX,
                                          "expireTime": "2030-01-01T00:00:00Z"}
    assert made[0].headers["x-goog-api-key"] == "gw-key"
    sent = [orjson.loads(seen.body) for seen in server.fake.requests[1:]]
    assert sent == [{**OWN, "cachedContent": "cachedContents/fake1"}] * 2
    assert copies.names == {("c1", "gemini", f"{credential_fingerprint(None)}:gemini-up"):
                            "cachedContents/fake1"}


async def test_a_stream_names_the_copy_too(server: Server) -> None:
    chunks = await collect(server.provider(), call(Copies(), "streamGenerateContent", "sse"))
    assert chunks[-1].usage is not None and chunks[-1].usage.cached_tokens == 6  # its words
    assert orjson.loads(server.fake.requests[-1].body)["cachedContent"] == "cachedContents/fake1"


async def test_each_credential_has_its_own_copy(server: Server) -> None:
    copies = Copies()
    provider = server.provider()
    try:
        for secret in ("k1", "k2", "k1"):
            target = Target("gemini-up", "alias", credential=secret)
            await provider.forward(call(copies), target)
    finally:
        await provider.aclose()
    assert sorted(copies.names.values()) == ["cachedContents/fake1", "cachedContents/fake2"]
    keys = [seen.headers["x-goog-api-key"] for seen in server.fake.requests
            if seen.path == "/v1beta/cachedContents"]
    assert keys == ["k1", "k2"]


async def test_losing_a_race_deletes_the_extra_copy(server: Server) -> None:
    copies = Copies()
    copies.lose_race = "cachedContents/theirs"
    provider = server.provider()
    try:
        server.fake.caches["cachedContents/theirs"] = {"usageMetadata": {"totalTokenCount": 7}}
        await provider.forward(call(copies), TARGET)
    finally:
        await provider.aclose()
    assert [seen.method for seen in server.fake.requests] == ["POST", "DELETE", "POST"]
    assert "cachedContents/fake1" not in server.fake.caches
    assert orjson.loads(server.fake.requests[-1].body)["cachedContent"] == (
        "cachedContents/theirs")


async def test_an_upstream_that_will_not_keep_it_gets_the_prefix(server: Server) -> None:
    server.fake.min_cache_tokens = 4096
    copies = Copies()
    provider = server.provider()
    try:
        await provider.forward(call(copies), TARGET)
    finally:
        await provider.aclose()
    assert server.fake.requests[-1].body == MERGED
    assert copies.names == {}


@pytest.mark.parametrize(("method", "alt"), [("generateContent", None),
                                             ("streamGenerateContent", "sse")])
async def test_a_copy_the_upstream_lost_is_forgotten_and_the_prefix_sent(
    server: Server, method: str, alt: str | None
) -> None:
    copies = Copies()
    provider = server.provider()
    try:
        await provider.forward(call(copies), TARGET)  # makes cachedContents/fake1
        server.fake.caches.clear()  # expired or deleted upstream
        if alt is None:
            answer = await provider.forward(call(copies, method, alt), TARGET)
            assert answer.usage is not None and answer.usage.cached_tokens == 0
        else:
            chunks = [c async for c in provider.forward_stream(call(copies, method, alt),
                                                                TARGET)]
            assert b"Hello" in b"".join(c.data for c in chunks)
    finally:
        await provider.aclose()
    refused, resent = server.fake.requests[-2:]
    assert orjson.loads(refused.body)["cachedContent"] == "cachedContents/fake1"
    assert resent.body == MERGED
    assert copies.names == {}  # the next request makes a new copy
