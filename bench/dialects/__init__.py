"""What translating between dialects costs a request: every inbound-upstream pair in process,
and the OpenAI pass-through against the mock upstream, end to end."""
