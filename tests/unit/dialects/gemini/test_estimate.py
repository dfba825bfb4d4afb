from cometgate.dialects.gemini.estimate import estimate


def test_text_is_estimated_generously_and_max_output_is_read() -> None:
    body = (b'{"contents":[{"parts":[{"text":"' + b"x" * 300 + b'"}]}],'
            b'"generationConfig":{"maxOutputTokens":64.0}}')
    tokens, max_output = estimate(body)
    assert tokens >= 100 and max_output == 64


def test_inline_data_counts_as_a_media_part_not_as_its_base64() -> None:
    body = (b'{"contents":[{"parts":[{"inline_data":{"mime_type":"image/png","data":"'
            + b"A" * 100_000 + b'"}}]}]}')
    tokens, max_output = estimate(body)
    assert 258 <= tokens < 300 and max_output is None


def test_unreadable_bodies_estimate_from_their_size() -> None:
    assert estimate(b"{not json" * 10)[0] > 0
    assert estimate(b"[1,2]") == (2, None)
