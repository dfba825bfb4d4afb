"""Which URLs a prompt names, how their pages reach the model, and the metadata the answer
carries; and HTML read as visible text."""

from __future__ import annotations

import ipaddress

import pytest

from cometgate.canonical import GenerateRequest, Message, TextPart, UrlMetadata, UrlRetrieval
from cometgate.grounding.address_guard import unsafe_address
from cometgate.grounding.fetch import FetchedPage, FetchFailure
from cometgate.grounding.page_text import html_text
from cometgate.grounding.url_context import UrlContextRead, read_urls, urls_in, with_pages


def asking(*texts: str, model_text: str = "") -> GenerateRequest:
    messages = [Message("user", (TextPart(text),)) for text in texts]
    if model_text:
        messages.insert(0, Message("assistant", (TextPart(model_text),)))
    return GenerateRequest("m", tuple(messages), url_context=True)


def test_urls_are_found_in_the_callers_turns_once_each_without_sentence_punctuation() -> None:
    request = asking(
        "Compare https://a.example/x, and (see http://b.example/y?q=1).",
        "Again https://a.example/x! Also https://en.wikipedia.org/wiki/Comet_(disambiguation).",
        model_text="The model said https://not-the-caller.example/",
    )
    assert urls_in(request) == ["https://a.example/x", "http://b.example/y?q=1",
                                "https://en.wikipedia.org/wiki/Comet_(disambiguation)"]


async def test_at_most_max_urls_are_fetched_the_rest_reported_as_errors() -> None:
    fetched: list[str] = []

    async def fetch(url: str) -> FetchedPage | FetchFailure:
        fetched.append(url)
        return FetchedPage(url, url, "text/plain", "", f"text of {url}", False)

    request = asking(" ".join(f"https://p{i}.example/" for i in range(4)))
    read = await read_urls(request, fetch, max_urls=2)
    assert fetched == ["https://p0.example/", "https://p1.example/"]
    assert read.metadata == (
        UrlMetadata("https://p0.example/", UrlRetrieval.SUCCESS),
        UrlMetadata("https://p1.example/", UrlRetrieval.SUCCESS),
        UrlMetadata("https://p2.example/", UrlRetrieval.ERROR),
        UrlMetadata("https://p3.example/", UrlRetrieval.ERROR),
    )
    assert read.fetched_pages == 2


def test_pages_go_to_the_model_in_a_system_block_after_the_callers_own() -> None:
    request = GenerateRequest("m", asking("Read https://a.example/").messages,
                              system=(TextPart("Be brief."),), url_context=True)
    read = UrlContextRead((
        FetchedPage("https://a.example/", "https://a.example/", "text/html", "A title",
                    "Body text.", True),
        FetchFailure("https://b.example/", UrlRetrieval.UNSAFE, "10.0.0.1 is not public"),
    ))
    prepared = with_pages(request, read)
    assert not prepared.url_context and prepared.messages == request.messages
    assert prepared.system[0] == TextPart("Be brief.")
    block = prepared.system[1]
    assert isinstance(block, TextPart)
    assert '<page url="https://a.example/">\nTitle: A title\nBody text.\n' in block.text
    assert "(The page is longer; this is its beginning.)" in block.text
    assert "The page at https://b.example/ could not be read: 10.0.0.1 is not public." \
        in block.text
    assert with_pages(request, UrlContextRead(())).system == request.system


def test_html_is_read_as_title_and_visible_text_even_when_malformed() -> None:
    title, text = html_text("<html><head><title> A  B </title><script>x=1</script>"
                            "<body><p>One&amp;two</p><div>three<br>four</div><style>p{}</style>"
                            "<p>unclosed")
    assert title == "A B"
    assert text == "One&two\n\nthree\nfour\n\nunclosed"


@pytest.mark.parametrize("address", [
    "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo around 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    "::ffff:10.0.0.1",
])
def test_ipv4_inside_ipv6_is_judged_by_the_ipv4_address(address: str) -> None:
    assert unsafe_address(ipaddress.ip_address(address)) is not None


def test_a_public_address_passes() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
        assert unsafe_address(ipaddress.ip_address(address)) is None
