"""Google Search grounding the gateway runs itself, for models whose upstreams cannot search:
a configured search backend (`search_backends`), the queries and the citations of an answer
(`emulated_search`), and one call's run of them (`search_run`). URL context for upstreams that
cannot read pages: page fetches behind the address guard (`fetch`, `address_guard`), and the
pages read into text for the model (`page_text`, `url_context`)."""
