"""Anthropic's error types and the HTTP status it answers each with, as its API reference
documents them (the set of types may grow; an unknown one is read by its status)."""

from __future__ import annotations

STATUS_OF_ERROR_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
    "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}
ERROR_TYPE_OF_STATUS = {status: kind for kind, status in STATUS_OF_ERROR_TYPE.items()}
