import pytest

from cometgate.canonical import ToolCallPart, ToolResultPart
from cometgate.dialects.tool_calls import CallLedger
from cometgate.errors import InvalidRequest


def test_parallel_calls_to_one_function_pair_in_order_without_ids() -> None:
    ledger = CallLedger("call")
    first = ledger.call(ToolCallPart("weather", {"city": "Oslo"}), turn=1)
    second = ledger.call(ToolCallPart("weather", {"city": "Rome"}), turn=1)
    assert (first.id, second.id) == ("call_1_0", "call_1_1")
    assert ledger.answer(ToolResultPart("weather", {"t": 1}), "w").id == "call_1_0"
    assert ledger.answer(ToolResultPart("weather", {"t": 2}), "w").id == "call_1_1"


def test_ids_win_over_names_and_invented_ids_fall_back_to_names() -> None:
    ledger = CallLedger("toolu")
    ledger.call(ToolCallPart("a", {}, call_id="x1"), turn=0)
    unnamed = ledger.call(ToolCallPart("a", {}), turn=0)
    assert ledger.answer(ToolResultPart("a", {}, call_id="x1"), "w").id == "x1"
    assert ledger.answer(ToolResultPart("a", {}, call_id="made-up"), "w") is unnamed


def test_a_result_answering_nothing_is_refused_and_turns_reset() -> None:
    ledger = CallLedger("call")
    ledger.call(ToolCallPart("a", {}), turn=0)
    ledger.new_turn()
    with pytest.raises(InvalidRequest, match="answers no function call"):
        ledger.answer(ToolResultPart("a", {}), "contents[2].parts[0]")
