"""Add Tollgate's 429 to every limited operation of a spec.

Why: a client generated from the spec then knows the 429 it will meet (its
Retry-After, the IETF RateLimit and RateLimit-Policy fields, and the
problem+json body naming the rule) and can back off instead of failing. The
admitted responses (2xx) get the RateLimit fields too. Shared definitions go
into `components` once, under Tollgate-prefixed names; operations refer to
them. Running it twice changes nothing the second time.
"""
from __future__ import annotations

import copy
from typing import NamedTuple

from src.tollgate_tools.openapi.importer import import_spec
from src.tollgate_tools.openapi.spec import Document, base_path, operations

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
HEADERS = {
    "TollgateRetryAfter": {
        "description": "Seconds to wait before retrying (RFC 9110); a retry then succeeds if nothing else used the quota.",
        "schema": {"type": "integer", "minimum": 1}},
    "TollgateRateLimit": {
        "description": 'What is left of each limit (draft-ietf-httpapi-ratelimit-headers, a Structured Field '
                       'List): `"<rule>";r=<remaining>;t=<seconds until more>`, e.g. `"burst";r=39;t=1`.',
        "schema": {"type": "string"}},
    "TollgateRateLimitPolicy": {
        "description": 'The limits that apply (draft-ietf-httpapi-ratelimit-headers): `"<rule>";q=<quota>;w=<window '
                       'seconds>`, e.g. `"burst";q=40;w=2, "daily";q=10000;w=86400`.',
        "schema": {"type": "string"}},
}
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details: the quota-exceeded problem Tollgate answers with when a rate limit denies.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference", "example": QUOTA_EXCEEDED},
        "title": {"type": "string", "example": "Too Many Requests"},
        "status": {"type": "integer", "example": 429},
        "detail": {"type": "string", "example": 'Rate limit "burst" exceeded; retry in 2 s.'},
        "instance": {"type": "string", "format": "uri-reference"},
        "rule": {"type": "string", "description": "The rule that denied the request.", "example": "burst"},
        "retry_after": {"type": "integer", "minimum": 1, "description": "Seconds, as in Retry-After."},
        "allowed": {"type": "boolean", "description": "Always false on a 429."},
    },
}
RESPONSE = {
    "description": "Too Many Requests: a rate limit denied the request. Wait Retry-After seconds before retrying.",
    "headers": {"Retry-After": {"$ref": "#/components/headers/TollgateRetryAfter"},
                "RateLimit": {"$ref": "#/components/headers/TollgateRateLimit"},
                "RateLimit-Policy": {"$ref": "#/components/headers/TollgateRateLimitPolicy"}},
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/TollgateProblem"}}},
}


class Annotated(NamedTuple):
    raw: dict
    limited: list[str]      # "METHOD /path" of each operation that got the 429
    kept: list[str]         # operations that already had a 429 of their own (left as they were)


def annotate(doc: Document, base: str | None = None) -> Annotated:
    """A copy of the spec with Tollgate's 429 on every operation an enforcing rule limits
    (as the Worker would resolve it: the imported config, parsed by the Worker's parser)."""
    enforcing = [r for r in import_spec(doc, base).config.rules if not r.shadow]
    raw = copy.deepcopy(doc.raw)
    limited, kept = [], []
    for op in operations(raw, base_path(raw, base)):
        if not any(r.match.matches(op.method, op.sample) for r in enforcing):
            continue
        responses = op.node.setdefault("responses", {})
        existing = responses.get("429", responses.get(429))
        if existing is not None and existing != {"$ref": "#/components/responses/TollgateTooManyRequests"}:
            kept.append(op.label)
            continue
        responses["429"] = {"$ref": "#/components/responses/TollgateTooManyRequests"}
        for code, response in responses.items():
            if str(code).startswith("2") and isinstance(response, dict) and "$ref" not in response:
                headers = response.setdefault("headers", {})
                headers.setdefault("RateLimit", {"$ref": "#/components/headers/TollgateRateLimit"})
                headers.setdefault("RateLimit-Policy", {"$ref": "#/components/headers/TollgateRateLimitPolicy"})
        limited.append(op.label)
    if limited:
        components = raw.setdefault("components", {})
        components.setdefault("headers", {}).update(copy.deepcopy(HEADERS))
        components.setdefault("schemas", {})["TollgateProblem"] = copy.deepcopy(PROBLEM_SCHEMA)
        components.setdefault("responses", {})["TollgateTooManyRequests"] = copy.deepcopy(RESPONSE)
    return Annotated(raw, limited, kept)

