"""Gemini embeddings both ways: `:embedContent` and `:batchEmbedContents` bodies from callers,
and `:batchEmbedContents` to a Gemini upstream.

Inbound, a body is read in Google's two stages (protojson: names and types, every problem in
one 400; then meaning, every violation in one 400). What Google says and does:

- An EmbedContentRequest embeds one Content into one vector, and only its `parts.text` count
  (the API reference). Several text parts are one text here, joined by newlines; a part that
  is not text (inline data, a file) is refused, since no upstream of ours embeds media.
- `title` only goes with task type RETRIEVAL_DOCUMENT (refused otherwise, in the words of
  Google's answer); TASK_TYPE_UNSPECIFIED means no task type.
- In a batch, the `model` of each request must match the batch's (the URL's); a request that
  names none takes the batch's. At most 100 requests fit in one batch.
- The canonical request has one task type and one output size for all its inputs, so a batch
  whose requests differ in these is refused (the SDKs copy one config into every request).

Outbound, every input becomes one request of a batch. Google's answers carry a token count
(`usageMetadata.promptTokenCount`) only sometimes; without one the count is estimated from the
inputs' length, as admission estimates (CHARS_PER_TOKEN).
"""

from __future__ import annotations

from typing import Any

import orjson

from cometgate.canonical import EmbedInput, EmbedRequest, EmbedResponse
from cometgate.dialects.estimate import CHARS_PER_TOKEN
from cometgate.dialects.gemini.caller_request import read_json_object
from cometgate.dialects.gemini.protojson import (
    Normalised,
    invalid_value_message,
    parse,
    problems_error,
)
from cometgate.dialects.gemini.schema import PACKAGE, EnumType, FieldSpec, Kind, MessageType
from cometgate.dialects.gemini.violations import Violations
from cometgate.dialects.upstream_answers import unreadable
from cometgate.errors import InvalidRequest

TASK_TYPES = (
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
)
MAX_BATCH = 100  # "at most 100 requests can be in one batch"
TITLE_MESSAGE = (
    "Unable to submit request because the model does not support the title parameter "
    "unless the task_type is RETRIEVAL_DOCUMENT."
)
_MODEL_PREFIXES = ("models/", "tunedModels/")

EMBED_CONTENT_REQUEST = MessageType(
    f"{PACKAGE}.EmbedContentRequest",
    (
        FieldSpec("model", "model", Kind.STRING),
        FieldSpec("content", "content", Kind.MESSAGE, message=f"{PACKAGE}.Content"),
        FieldSpec("task_type", "taskType", Kind.ENUM,
                  enum=EnumType(f"{PACKAGE}.TaskType", TASK_TYPES)),
        FieldSpec("title", "title", Kind.STRING),
        FieldSpec("output_dimensionality", "outputDimensionality", Kind.INT32),
    ),
)
# The shared schema registry does not hold EmbedContentRequest, so the batch's requests are
# taken as free-form values here and read one by one against EMBED_CONTENT_REQUEST.
_BATCH_ENVELOPE = MessageType(
    f"{PACKAGE}.BatchEmbedContentsRequest",
    (
        FieldSpec("model", "model", Kind.STRING),
        FieldSpec("requests", "requests", Kind.VALUE, repeated=True),
    ),
)


# --- inbound: requests ---------------------------------------------------------------------


def decode_embed_content(body: bytes, model: str) -> EmbedRequest:
    """`model` is the model id of the URL (with or without "models/")."""
    fields = parse(EMBED_CONTENT_REQUEST, read_json_object(body))
    violations = Violations("EmbedContentRequest")
    item = _read_item(fields, "", model, violations)
    violations.raise_if_any()
    return EmbedRequest(model, (item,), _task_type(fields), fields.get("output_dimensionality"))


def decode_batch_embed_contents(body: bytes, model: str) -> EmbedRequest:
    envelope = parse(_BATCH_ENVELOPE, read_json_object(body))
    requests = _parse_requests(envelope.get("requests", []))
    violations = Violations("BatchEmbedContentsRequest")
    _check_model(envelope, "", model, violations)
    if not requests:
        violations.add("requests", "requests is not specified")
    elif len(requests) > MAX_BATCH:
        violations.add("requests", f"at most {MAX_BATCH} requests can be in one batch")
    inputs = tuple(
        _read_item(fields, f"requests[{i}].", model, violations)
        for i, fields in enumerate(requests)
    )
    _check_uniform(requests, violations)
    violations.raise_if_any()
    first = requests[0]
    return EmbedRequest(model, inputs, _task_type(first), first.get("output_dimensionality"))


def _parse_requests(raw: list[Any]) -> list[Normalised]:
    """Every request read as an EmbedContentRequest; all problems of all of them in one 400,
    each at its path inside the batch (`requests[2].content.parts[0].text`)."""
    problems: list[tuple[str, str]] = []
    parsed: list[Normalised] = []
    for i, item in enumerate(raw):
        path = f"requests[{i}]"
        if not isinstance(item, dict):
            type_name = f"type.googleapis.com/{EMBED_CONTENT_REQUEST.full_name}"
            problems.append((path, invalid_value_message(path, type_name, item)))
            continue
        try:
            parsed.append(parse(EMBED_CONTENT_REQUEST, item))
        except InvalidRequest as err:
            problems.extend(_nested(err, path))
    if problems:
        raise problems_error(problems)
    return parsed


def _nested(err: InvalidRequest, prefix: str) -> list[tuple[str, str]]:
    """Problems found in a request read on its own, moved to `prefix`. Protojson quotes the
    path of each problem in its message (`… at 'content.parts[0]' …`), or, at the request's
    root, names only the field (`Unknown name "x": …`)."""
    moved: list[tuple[str, str]] = []
    for path, messages in err.violations.items():
        for message in messages.split("\n"):
            if path:
                new_path = f"{prefix}.{path}"
                moved.append((new_path, message.replace(f"'{path}'", f"'{new_path}'", 1)))
            else:
                moved.append((prefix, message.replace('": ', f"\" at '{prefix}': ", 1)))
    return moved


def _read_item(fields: Normalised, prefix: str, model: str, violations: Violations) -> EmbedInput:
    _check_model(fields, prefix, model, violations)
    text = _content_text(fields.get("content"), prefix, violations)
    title = fields.get("title")
    if title is not None and _task_type(fields) != "RETRIEVAL_DOCUMENT":
        violations.add_plain(prefix + "title", TITLE_MESSAGE)
    dimensionality = fields.get("output_dimensionality")
    if dimensionality is not None and dimensionality <= 0:
        violations.add(prefix + "output_dimensionality",
                       "output_dimensionality must be greater than 0.")
    return EmbedInput(text, title)


def _content_text(content: Normalised | None, prefix: str, violations: Violations) -> str:
    if content is None:
        violations.add(prefix + "content", "content is not specified")
        return ""
    parts = content.get("parts") or []
    if not parts:
        violations.add(prefix + "content.parts", "parts must not be empty")
    texts: list[str] = []
    for j, part in enumerate(parts):
        if "text" in part:
            texts.append(part["text"])
        else:
            violations.add(f"{prefix}content.parts[{j}]",
                           "only text parts can be embedded; this part has no text")
    return "\n".join(texts)


def _check_model(fields: Normalised, prefix: str, model: str, violations: Violations) -> None:
    named = fields.get("model")
    if named is not None and _model_id(named) != _model_id(model):
        violations.add(prefix + "model",
                       f"{named} does not match the model of the URL, models/{_model_id(model)}")


def _check_uniform(requests: list[Normalised], violations: Violations) -> None:
    if not requests:
        return
    first = requests[0]
    for i, fields in enumerate(requests[1:], start=1):
        for name in ("task_type", "output_dimensionality"):
            if fields.get(name) != first.get(name):
                violations.add(
                    f"requests[{i}].{name}",
                    f"this gateway needs the same {name} in every request of a batch",
                )


def _task_type(fields: Normalised) -> str | None:
    task: str | None = fields.get("task_type")
    return None if task in (None, "TASK_TYPE_UNSPECIFIED") else task


def _model_id(name: str) -> str:
    return name.removeprefix("models/")


# --- inbound: responses ---------------------------------------------------------------------


def encode_embed_content(response: EmbedResponse) -> bytes:
    """`{"embedding":{"values":[…]}}`; the response holds exactly one vector."""
    if len(response.vectors) != 1:
        raise ValueError(f"embedContent answers one vector, not {len(response.vectors)}")
    return orjson.dumps({"embedding": {"values": response.vectors[0]}})


def encode_batch_embed_contents(response: EmbedResponse) -> bytes:
    """`{"embeddings":[{"values":[…]}, …]}` in request order."""
    return orjson.dumps({"embeddings": [{"values": vector} for vector in response.vectors]})


# --- outbound -------------------------------------------------------------------------------


def encode_upstream_batch(request: EmbedRequest, upstream_model: str) -> dict[str, Any]:
    """The body of a `:batchEmbedContents` call; at most MAX_BATCH inputs per call (the
    caller splits larger requests)."""
    name = model_resource(upstream_model)
    return {"requests": [_upstream_item(item, request, name) for item in request.inputs]}


def model_resource(upstream_model: str) -> str:
    """The model as Google names it in URLs and bodies: "models/<id>" (or "tunedModels/…")."""
    return upstream_model if upstream_model.startswith(_MODEL_PREFIXES) else (
        f"models/{upstream_model}")


def _upstream_item(item: EmbedInput, request: EmbedRequest, model: str) -> dict[str, Any]:
    # Google takes a title with RETRIEVAL_DOCUMENT only; elsewhere it becomes part of the text.
    titled = request.task_type == "RETRIEVAL_DOCUMENT" and item.title is not None
    text = item.text if titled else item.titled_text
    out: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
    if request.task_type is not None:
        out["taskType"] = request.task_type
    if titled:
        out["title"] = item.title
    if request.output_dimensionality is not None:
        out["outputDimensionality"] = request.output_dimensionality
    return out


def decode_upstream_batch(body: bytes, *, inputs: tuple[EmbedInput, ...] = ()) -> EmbedResponse:
    """A `:batchEmbedContents` answer. `inputs`, when given, are the inputs sent: the answer
    must hold one vector for each, and they estimate the token count when Google gives none.
    Anything unreadable is an UpstreamError (502)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise unreadable("the embeddings answer is not JSON") from None
    embeddings = document.get("embeddings") if isinstance(document, dict) else None
    if not isinstance(embeddings, list):
        raise unreadable("the embeddings answer has no embeddings")
    vectors = tuple(_values(item) for item in embeddings)
    if inputs and len(vectors) != len(inputs):
        raise unreadable(f"{len(vectors)} embeddings for {len(inputs)} inputs")
    tokens = _prompt_token_count(document)
    if tokens is None:
        tokens = sum(len(item.titled_text) // CHARS_PER_TOKEN + 1 for item in inputs)
    return EmbedResponse(vectors, tokens)


def _values(item: object) -> tuple[float, ...]:
    values = item.get("values") if isinstance(item, dict) else None
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise unreadable("an embedding has no list of numbers as values")
    return tuple(float(v) for v in values)


def _prompt_token_count(document: dict[str, Any]) -> int | None:
    metadata = document.get("usageMetadata")
    count = metadata.get("promptTokenCount") if isinstance(metadata, dict) else None
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return count
    return None
