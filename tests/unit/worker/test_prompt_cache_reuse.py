"""What the local worker reports as served from llama.cpp's KV cache, for callers that name a
prompt cache (a cached prefix of a Gemini caller's cachedContent)."""

from __future__ import annotations

import pytest

from cometgate.worker.generation import reused_prefix
from cometgate.worker.openai_wire import Usage
from cometgate.worker.request import RequestError, parse_chat_request

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("evaluated", "prompt", "reused"), [
    ([], (1, 2, 3), 0),  # a fresh context
    ([1, 2, 3, 9, 9], (1, 2, 3, 4), 3),  # the shared prefix, then the new tokens
    ([1, 2, 3, 4, 7, 8], (1, 2, 3, 4), 3),  # all of it: the last one is evaluated again
    ([1, 2, 3, 4], (1, 2, 3, 4), 4),  # the cache holds exactly the prompt
    ([5, 2, 3], (1, 2, 3), 0),
])
def test_reuse_follows_llama_cpps_rule(evaluated: list[int], prompt: tuple[int, ...],
                                       reused: int) -> None:
    assert reused_prefix(evaluated, prompt) == reused


def test_hits_are_reported_as_openai_reports_them_only_when_asked() -> None:
    assert Usage(10, 2, 6).as_wire() == {"prompt_tokens": 10, "completion_tokens": 2,
                                         "total_tokens": 12,
                                         "prompt_tokens_details": {"cached_tokens": 6}}
    assert "prompt_tokens_details" not in Usage(10, 2).as_wire()


def test_the_prompt_cache_key_is_read() -> None:
    assert parse_chat_request({**BODY, "prompt_cache_key": "k"}).prompt_cache_key == "k"
    assert parse_chat_request(BODY).prompt_cache_key is None
    with pytest.raises(RequestError) as caught:
        parse_chat_request({**BODY, "prompt_cache_key": 5})
    assert caught.value.param == "prompt_cache_key"
