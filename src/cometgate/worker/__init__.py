"""The local model worker: its own program, an OpenAI-compatible HTTP server around one llama.cpp
model (`python -m cometgate.worker`).

The gateway starts it as a process (providers/local/supervisor.py) and speaks to it over HTTP
only, so decoding never runs on the gateway's event loop and a crash in native code costs a
restart. It imports nothing of the gateway's api, pipeline or providers (tests/unit/test_layers.py).
"""
