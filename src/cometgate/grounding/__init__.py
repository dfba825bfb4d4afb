"""Google Search grounding the gateway runs itself, for models whose upstreams cannot search:
a configured search backend (`search_backends`), the queries and the citations of an answer
(`emulated_search`), and one call's run of them (`search_run`)."""
