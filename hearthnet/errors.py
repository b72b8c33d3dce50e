"""The one error type of HearthNet and its closed set of codes.

    HearthNetError(code, message, **details)
        code      -- one of ERRORS (below); an unknown code is a programming error
        message   -- one human line, no traceback
        details   -- data a caller may act on (key path, retry_after_ms, ...)

Every code maps to exactly one HTTP status and one CLI exit code. The same table
is written down in docs/contract.md; tests/unit/test_docs.py keeps the two equal.
Errors raised by libraries underneath (sqlite3, nacl, pydantic, OSError) are
translated at the boundary where they happen, never passed through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hearthnet import constants as C


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: str
    http_status: int
    exit_code: int
    meaning: str


def _spec(code: str, http: int, exit_code: int, meaning: str) -> tuple[str, ErrorSpec]:
    return code, ErrorSpec(code, http, exit_code, meaning)


ERRORS: dict[str, ErrorSpec] = dict(
    [
        # --- input ---
        _spec("bad_request", 400, C.EXIT_USAGE, "The request, argument or file is malformed (not JSON, wrong shape, bad value)."),
        _spec("config_invalid", 400, C.EXIT_USAGE, "A configuration file or HEARTHNET_* variable has a bad key or value."),
        _spec("schema_invalid", 400, C.EXIT_ERROR, "A capability request or response does not match its JSON Schema; details name the failing path."),
        _spec("event_invalid", 400, C.EXIT_ERROR, "An event is not canonical, has a bad field, an unknown type, or breaks its author's chain."),
        _spec("payload_too_large", 413, C.EXIT_CAPACITY, "A body, event or batch exceeds its size limit."),
        # --- authentication / authorisation ---
        _spec("unauthorized", 401, C.EXIT_AUTH, "No valid API key or signature: the gateway answers only callers it knows (deny by default)."),
        _spec("invalid_signature", 401, C.EXIT_AUTH, "A signature does not verify against the claimed key."),
        _spec("stale_timestamp", 401, C.EXIT_AUTH, "A signed request's timestamp is outside the allowed clock skew."),
        _spec("replay", 401, C.EXIT_AUTH, "A signed request's nonce was already used."),
        _spec("not_member", 403, C.EXIT_AUTH, "The signer is not a member of this community (or not yet known to be)."),
        _spec("revoked", 403, C.EXIT_AUTH, "The signer's membership was revoked; its later calls and events are refused."),
        _spec("forbidden", 403, C.EXIT_AUTH, "The signer is a member but its trust level does not allow this."),
        _spec("pin_mismatch", 401, C.EXIT_AUTH, "A peer presented a TLS certificate other than the one pinned for its node id."),
        _spec("wrong_community", 403, C.EXIT_AUTH, "The object belongs to another community."),
        # --- identity / local state ---
        _spec("keys_missing", 404, C.EXIT_ERROR, "No node key in the data directory: run `hearthnet init`."),
        _spec("keys_invalid", 500, C.EXIT_ERROR, "A key file exists but cannot be read as an ed25519 key."),
        _spec("keys_insecure", 500, C.EXIT_ERROR, "A key file or its directory is readable by other users; fix its permissions (0600/0700)."),
        _spec("not_initialised", 409, C.EXIT_ERROR, "The node has no community yet: create one or join one."),
        _spec("already_exists", 409, C.EXIT_ERROR, "The thing to create exists already (identity, community, file)."),
        _spec("conflict", 409, C.EXIT_ERROR, "The request conflicts with stored state (for example an event id reused with other content)."),
        _spec("db_corrupt", 500, C.EXIT_ERROR, "Stored data failed an integrity or signature check."),
        _spec("storage_error", 507, C.EXIT_CAPACITY, "The disk refused a write (full, read-only, permission)."),
        # --- lookup / lifecycle ---
        _spec("not_found", 404, C.EXIT_ERROR, "The named capability, event, file, corpus or key does not exist."),
        _spec("expired", 410, C.EXIT_ERROR, "A signed object (manifest, invite, snapshot) is past its expiry."),
        # --- capacity / availability ---
        _spec("rate_limited", 429, C.EXIT_CAPACITY, "Too many requests from this peer; retry after `retry_after_ms`."),
        _spec("capacity_exceeded", 429, C.EXIT_CAPACITY, "The serving node is at its concurrency or storage limit."),
        _spec("timeout", 408, C.EXIT_ERROR, "The call did not finish within its deadline."),
        _spec("partition", 503, C.EXIT_ERROR, "No reachable node can serve this right now (all failed or quarantined)."),
        _spec("unhealthy", 503, C.EXIT_ERROR, "One or more health checks failed (`hearthnet doctor`, `/ready`)."),
        _spec("no_node", 503, C.EXIT_NO_NODE, "No running node was found for this data directory or --node URL."),
        # --- user intent ---
        _spec("aborted", 400, C.EXIT_USAGE, "The operation needs explicit confirmation (for example --yes) and did not get it."),
        # --- last resort ---
        _spec("internal", 500, C.EXIT_ERROR, "An unexpected fault; the message says what failed, never a stack trace."),
    ]
)


class HearthNetError(Exception):
    """The single exception type. `code` is always one of ERRORS."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def spec(self) -> ErrorSpec:
        return ERRORS[self.code]

    @property
    def http_status(self) -> int:
        return self.spec.http_status

    @property
    def exit_code(self) -> int:
        return self.spec.exit_code

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of an error (docs/contract.md, "Errors")."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}

    @classmethod
    def from_wire(cls, data: Any, fallback: str = "the call failed", *, context: str = "") -> HearthNetError:
        """The error an `error` frame or body (`{code, message}`) names; a code outside the closed set is `internal`.
        `context` goes before the message (what was being done: a file name, "over the mesh")."""
        data = data if isinstance(data, dict) else {}
        code = data.get("code")
        message = str(data.get("message") or fallback)
        return cls(code if code in ERRORS else "internal", f"{context}: {message}" if context else message)

    def one_line(self) -> str:
        return f"error[{self.code}]: {self.message}"

    def __repr__(self) -> str:
        return f"HearthNetError({self.code!r}, {self.message!r})"


def validation_path(exc: Any, root: str = "(root)") -> str:
    """The dotted key path of a validation error's first problem (pydantic's and FastAPI's have `errors()`).
    `[key]`, pydantic's mark for a bad dict key, is left out."""
    loc = exc.errors()[0].get("loc", ())
    return ".".join(str(p) for p in loc if p != "[key]") or root


def validation_message(exc: Any, root: str = "(root)", *, show_input: bool = False) -> str:
    """A validation error as one line, `key.path: what is wrong` (and ` (got VALUE)` for a scalar input)."""
    err = exc.errors()[0]
    got = err.get("input")
    shown = f" (got {str(repr(got))[:80]})" if show_input and "input" in err and not isinstance(got, dict | list) else ""
    return f"{validation_path(exc, root)}: {err.get('msg', 'invalid')}{shown}"


__all__ = ["ERRORS", "ErrorSpec", "HearthNetError", "validation_message", "validation_path"]
