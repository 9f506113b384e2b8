"""The OpenAPI document's error responses: every operation documents the 4xx answers it can give, in the one error
shape ``{"error": {"code", "message", "fields"?}}``, so that clients (and the fuzzer in CI) can rely on the schema."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    "ErrorResponse",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(
                    required=False, help_text="Per-field messages, keyed by field (nested for lists and objects)."
                ),
            },
        )
    },
)

# Any operation: bad query parameters, missing or wrong credentials, a forbidden role, an unknown or another
# organization's object, and the request rate.
_ANY = {
    "400": "Invalid input (parameters or body); `fields` names each problem.",
    "401": "Missing, invalid or expired credentials.",
    "403": "Authenticated, but not allowed.",
    "404": "No such object (or another organization's).",
    "429": "Rate limit reached; see `Retry-After`.",
}
# Operations that take a body or change state.
_WRITE = {
    "409": "Conflicts with the current state.",
    "413": "Request body too large.",
    "415": "Unsupported media type (send `application/json`).",
}


class ErrorDocumentingAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = dict(_ANY)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes |= _WRITE
        for code, description in codes.items():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = description
                responses[code] = response
        return responses
