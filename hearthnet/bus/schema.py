"""JSON Schema validation of requests, responses and stream frames.

Every call is checked twice (request and response), so the check runs as code
compiled by fastjsonschema; only when that says "invalid" does jsonschema
(Draft 2020-12) produce the message and the failing path. Schemas that
fastjsonschema cannot compile are checked by jsonschema alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema
import jsonschema
from jsonschema import Draft202012Validator

from hearthnet.bus.capability import CapabilityDescriptor
from hearthnet.errors import HearthNetError


class SchemaValidator:
    def __init__(self) -> None:
        # Keyed by id() for speed; the entry keeps its schema, so an id is never reused by another dict
        # while its entry lives (a freed schema's id could otherwise return another schema's validator).
        self._cache: dict[int, tuple[dict[str, Any], Draft202012Validator, Callable[[Any], Any] | None]] = {}

    def _compiled(self, schema: dict[str, Any]) -> tuple[Draft202012Validator, Callable[[Any], Any] | None]:
        hit = self._cache.get(id(schema))
        if hit is None or hit[0] is not schema:
            Draft202012Validator.check_schema(schema)
            try:
                fast = fastjsonschema.compile(schema)
            except (fastjsonschema.JsonSchemaDefinitionException, ValueError, TypeError):
                fast = None
            hit = self._cache[id(schema)] = (schema, Draft202012Validator(schema), fast)
        return hit[1], hit[2]

    def _check(self, schema: dict[str, Any] | None, value: Any, what: str) -> None:
        if schema is None:
            return
        full, fast = self._compiled(schema)
        if fast is not None:
            try:
                fast(value)
                return
            except fastjsonschema.JsonSchemaException:
                pass
        err = jsonschema.exceptions.best_match(full.iter_errors(value))
        if err is not None:
            path = "/" + "/".join(str(p) for p in err.absolute_path)
            raise HearthNetError("schema_invalid", f"{what} at {path}: {err.message}", path=path)

    def validate_request(self, d: CapabilityDescriptor, body: Any) -> None:
        self._check(d.request_schema, body, f"{d.name}@{d.version_str} request")

    def validate_response(self, d: CapabilityDescriptor, body: Any) -> None:
        self._check(d.response_schema, body, f"{d.name}@{d.version_str} response")

    def validate_stream_frame(self, d: CapabilityDescriptor, frame: Any) -> None:
        self._check(d.stream_schema, frame, f"{d.name}@{d.version_str} stream frame")


__all__ = ["SchemaValidator"]
