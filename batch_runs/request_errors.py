"""The error a bad run request raises: one :class:`FieldError` per problem, named by field."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one run parameter.

    Attributes:
        field: The parameter's wire name (e.g. ``endpoint_input_uri``), or ``body``.
        message: What is wrong and what was expected; starts with the field name.
    """

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """``{"field": ..., "message": ...}``."""
        return {"field": self.field, "message": self.message}


class InvalidRunRequest(ValueError):
    """The run parameters are invalid; ``details`` lists every problem.

    Attributes:
        details: One :class:`FieldError` per problem, in parameter order.
    """

    def __init__(self, details: tuple[FieldError, ...] | list[FieldError]) -> None:
        self.details = tuple(details)
        fields = ", ".join(dict.fromkeys(d.field for d in self.details))
        super().__init__(f"invalid run request: {len(self.details)} problem(s) in {fields}")

    @property
    def message(self) -> str:
        """The summary message (also ``str(self)``)."""
        return str(self)

    def to_error_body(self) -> dict[str, Any]:
        """The HTTP 400 body: ``{"error": {"code", "message", "details": [...]}}``."""
        return {
            "error": {
                "code": "InvalidRunRequest",
                "message": self.message,
                "details": [d.to_dict() for d in self.details],
            }
        }


def echoed_name(key: object) -> str:
    """An unknown parameter's name as it may be echoed: ASCII-escaped and at most 60 long."""
    text = key if isinstance(key, str) else str(key)
    escaped = ascii(text)[1:-1]
    return escaped if len(escaped) <= 60 else escaped[:57] + "..."
