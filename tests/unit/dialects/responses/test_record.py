"""What a response store would keep of one call: the final Response and the input items as
OpenAI lists them."""

from __future__ import annotations

from cometgate.dialects.responses.record import input_items, response_record


def test_a_string_input_is_one_user_message_item() -> None:
    [item] = input_items("Hi")
    assert item["id"].startswith("msg_") and item["status"] == "completed"
    assert (item["type"], item["role"], item["content"]) == (
        "message", "user", [{"type": "input_text", "text": "Hi"}])


def test_items_keep_their_ids_and_get_typed_content() -> None:
    items = input_items([
        {"role": "assistant", "content": "Earlier"},
        {"type": "function_call", "id": "fc_1", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "ok"},
        "not an item",
    ])
    assert [item["type"] for item in items] == ["message", "function_call",
                                                "function_call_output"]
    assert items[0]["content"] == [{"type": "output_text", "text": "Earlier"}]
    assert items[1]["id"] == "fc_1" and items[2]["id"].startswith("fco_")


def test_a_record_holds_the_request_the_answer_and_the_items() -> None:
    request = {"model": "m", "input": "Hi", "store": True}
    record = response_record(request, {"id": "resp_1", "status": "completed"})
    assert record.request == request and record.response["id"] == "resp_1"
    assert len(record.input_items) == 1
