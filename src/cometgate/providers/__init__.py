"""Upstreams: anything that can produce a generation. Configuration, not code, for most."""
