"""What a Responses request asks for that the upstream bills beyond one answer's tokens (see
dialects/billable.py): the built-in `web_search` tool, which the upstreams that run it bill
per search (Google per grounded prompt, Anthropic per search). Allowed by an operator as
"web_search"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.dialects.billable import Billable, BillableField, BillableKind
from cometgate.dialects.responses.web_search import WEB_SEARCH_TYPES


def billable(document: Mapping[str, Any]) -> Billable:
    tools = document.get("tools")
    fields = tuple(
        BillableField(f"tools[{index}]", "web_search", BillableKind.BUILTIN_TOOL)
        for index, tool in enumerate(tools if isinstance(tools, list) else [])
        if isinstance(tool, dict) and tool.get("type") in WEB_SEARCH_TYPES)
    return Billable(search=bool(fields), fields=fields)
