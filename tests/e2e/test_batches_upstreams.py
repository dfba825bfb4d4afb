"""A google-genai batch on a model of each upstream kind — Gemini (the caller's request
forwarded as it is), OpenAI and Anthropic (translated) — against a live gateway in front of
the three fakes: every request reaches the upstream in its own wire format, and every answer
comes back in input order with its key."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
from google import genai
from google.genai import types

from tests.contract.conftest import KINDS
from tests.e2e.conftest import MODEL, LiveGateway
from tests.e2e.fake_upstreams_live import FakesGateway, serve_before_fakes

POLL_SECONDS = 0.1
POLL_LIMIT = 600
ANSWERS = {"openai": "Hello from the fake upstream.",
           "anthropic": "Hello from the fake upstream.",
           "gemini": "Hello from the fake Gemini upstream."}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
         ) -> Iterator[FakesGateway]:
    yield from serve_before_fakes(tmp_path_factory, pytestconfig, "batch-upstreams")


def _texts(kind: str, live: FakesGateway, count: int) -> list[str]:
    """The questions the last `count` requests of this kind's upstream carried."""
    fake = getattr(live.fakes, kind)
    bodies = ([orjson.loads(seen.body) for seen in fake.requests[-count:]] if kind == "gemini"
              else fake.requests[-count:])
    if kind == "gemini":
        return [body["contents"][-1]["parts"][0]["text"] for body in bodies]
    content = [body["messages"][-1]["content"] for body in bodies]
    return [c if isinstance(c, str) else c[0]["text"] for c in content]


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_runs_on_every_upstream_kind(live: FakesGateway, kind: str) -> None:
    live.clear_scripts()
    questions = [f"{kind} batch question {i}" for i in range(3)]
    options = types.HttpOptions(base_url=live.gateway.base_url, api_version="v1beta")
    with genai.Client(api_key=live.gateway.key, http_options=options) as client:
        job = client.batches.create(model=f"{kind}-text", src=[
            types.InlinedRequest(contents=q, metadata={"key": f"k{i}"})
            for i, q in enumerate(questions)])
        assert job.name is not None
        for _ in range(POLL_LIMIT):
            job = client.batches.get(name=job.name)
            if job.state == types.JobState.JOB_STATE_SUCCEEDED:
                break
            time.sleep(POLL_SECONDS)
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED, job
    assert job.dest is not None and job.dest.inlined_responses is not None
    assert [((item.metadata or {})["key"], item.response.text if item.response else None)
            for item in job.dest.inlined_responses] == [
        (f"k{i}", ANSWERS[kind]) for i in range(3)]
    assert sorted(_texts(kind, live, 3)) == sorted(questions)


@pytest.mark.model
def test_a_batch_runs_on_the_local_model(gateway: LiveGateway) -> None:
    options = types.HttpOptions(base_url=gateway.base_url, api_version="v1beta")
    config = types.GenerateContentConfig(max_output_tokens=8, temperature=0)
    with genai.Client(api_key=gateway.key, http_options=options) as client:
        job = client.batches.create(model=MODEL, src=[
            types.InlinedRequest(contents=q, metadata={"key": f"local-{i}"}, config=config)
            for i, q in enumerate(("Say hi.", "Name a colour."))])
        assert job.name is not None
        for _ in range(POLL_LIMIT * 2):
            job = client.batches.get(name=job.name)
            if job.state == types.JobState.JOB_STATE_SUCCEEDED:
                break
            time.sleep(POLL_SECONDS)
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED, job
    assert job.dest is not None and job.dest.inlined_responses is not None
    items = job.dest.inlined_responses
    assert [(item.metadata or {})["key"] for item in items] == ["local-0", "local-1"]
    for item in items:
        assert item.response is not None and item.response.usage_metadata is not None
        assert 0 < (item.response.usage_metadata.candidates_token_count or 0) <= 8
