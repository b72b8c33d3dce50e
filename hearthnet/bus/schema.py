"""JSON Schema validation of requests, responses and stream frames (jsonschema, Draft 2020-12)."""

from __future__ import annotations

from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from hearthnet.bus.capability import CapabilityDescriptor
from hearthnet.errors import HearthNetError


class SchemaValidator:
    def __init__(self) -> None:
        self._cache: dict[int, Draft202012Validator] = {}

    def _validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        v = self._cache.get(id(schema))
        if v is None:
            Draft202012Validator.check_schema(schema)
            v = self._cache[id(schema)] = Draft202012Validator(schema)
        return v

    def _check(self, schema: dict[str, Any] | None, value: Any, what: str) -> None:
        if schema is None:
            return
        err = jsonschema.exceptions.best_match(self._validator(schema).iter_errors(value))
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
