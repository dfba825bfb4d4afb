"""What a Gemini request asks for that Google bills beyond one answer's tokens (see
dialects/billable.py): built-in tools (any member of a Tool besides functionDeclarations),
a `cachedContent`, `generationConfig.candidateCount`, and the images that
`responseModalities` with IMAGE asks for (one per candidate is reserved). Both spellings,
camelCase and snake_case, are read, as Google's own server reads them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.dialects.billable import Billable, BillableField, BillableKind, candidate_count

_FUNCTION_TOOLS = frozenset({"functionDeclarations", "function_declarations"})
_SEARCH_TOOLS = frozenset({"googleSearch", "googleSearchRetrieval"})  # billed per grounded prompt
# The most pages URL context reads for one request (Google's limit, and grounding.fetch's
# default max_urls): what a budget reservation covers before the URLs are known.
URL_CONTEXT_MAX_PAGES = 20
_CONFIG_KEYS = ("generationConfig", "generation_config")
_COUNT_KEYS = ("candidateCount", "candidate_count")
_MODALITY_KEYS = ("responseModalities", "response_modalities")


def billable(document: Mapping[str, Any]) -> Billable:
    fields = [*_builtin_tools(document.get("tools")), *_cached_content(document)]
    candidates, count_field = _candidates(document)
    if count_field is not None:
        fields.append(count_field)
    search = any(f.name in _SEARCH_TOOLS for f in fields)
    pages = URL_CONTEXT_MAX_PAGES if any(f.name == "urlContext" for f in fields) else 0
    images = candidates if _asks_for_images(document) else 0
    return Billable(candidates=candidates, search=search, page_fetches=pages, images=images,
                    fields=tuple(fields))


def _asks_for_images(document: Mapping[str, Any]) -> bool:
    for config_key in _CONFIG_KEYS:
        config = document.get(config_key)
        if not isinstance(config, dict):
            continue
        for key in _MODALITY_KEYS:
            modalities = config.get(key)
            if isinstance(modalities, list) and any(
                    isinstance(m, str) and m.upper() == "IMAGE" for m in modalities):
                return True
    return False


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _builtin_tools(tools: object) -> list[BillableField]:
    found: list[BillableField] = []
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        if not isinstance(tool, dict):
            continue
        for key, value in tool.items():
            if key not in _FUNCTION_TOOLS and value is not None:
                found.append(BillableField(f"tools[{index}].{key}", camel_case(key),
                                           BillableKind.BUILTIN_TOOL))
    return found


def _cached_content(document: Mapping[str, Any]) -> list[BillableField]:
    return [BillableField(key, "cachedContent", BillableKind.CACHED_CONTENT)
            for key in ("cachedContent", "cached_content") if document.get(key)]


def _candidates(document: Mapping[str, Any]) -> tuple[int, BillableField | None]:
    for config_key in _CONFIG_KEYS:
        config = document.get(config_key)
        if not isinstance(config, dict):
            continue
        for count_key in _COUNT_KEYS:
            count = candidate_count(config.get(count_key))
            if count is not None and count > 1:
                field = BillableField(f"{config_key}.{count_key}", "candidateCount",
                                      BillableKind.CANDIDATES)
                return count, field
    return 1, None
