"""`scripts/openapi`: OpenAPI specs to Tollgate rules (import) and back (annotate).

- `import SPEC`: per-operation `x-tollgate` and Kong's `x-kong-plugin-rate-limiting`
  extensions become `[vars.TOLLGATE]` rules and route costs, checked by the
  Worker's own config parser and against every operation of the spec.
- `annotate SPEC`: every limited operation gets the 429 response Tollgate
  sends (Retry-After, RateLimit, RateLimit-Policy, the problem+json schema),
  so generated clients know to back off.
"""
