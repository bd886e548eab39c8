"""Every spec read or written goes through a real OpenAPI validator (openapi-spec-validator)."""
from __future__ import annotations

from openapi_spec_validator import validate as _validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from src.tollgate_tools.openapi.spec import SpecError


def check(raw: dict, what: str) -> None:
    """SpecError naming `what` and the first problem when `raw` is not a valid OpenAPI document."""
    try:
        _validate(raw)
    except OpenAPIValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(document)"
        raise SpecError(f"{what} is not valid OpenAPI at {where}: {exc.message[:300]}") from exc
