"""The OpenAI Responses API (`POST /v1/responses`) as a caller dialect. Caller side only: an
upstream is reached through the canonical model, as for every other caller dialect."""
