"""Errors raised by devhost; each class is handled differently (HTTP status, CLI exit)."""

__all__ = [
    "AppLoadError",
    "DevhostError",
    "InstanceExistsError",
    "InstanceGoneError",
    "InstanceNotFoundError",
    "OrchestratorNotFoundError",
    "RequestRejected",
    "SettingsError",
]


class DevhostError(Exception):
    """Base class of every devhost error."""


class AppLoadError(DevhostError):
    """The app could not be imported or indexed (message names the function or file)."""


class SettingsError(DevhostError):
    """A setting (local.settings.json, host.json, %SETTING% reference) is missing or invalid."""


class InstanceExistsError(DevhostError):
    """``start_new`` on an instance id that is Pending, Running or Suspended."""


class InstanceNotFoundError(DevhostError, KeyError):
    """No orchestration instance has this id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "instance not found"


class InstanceGoneError(DevhostError):
    """The instance is already in a terminal state (HTTP 410 in the management API)."""


class OrchestratorNotFoundError(DevhostError):
    """``start_new`` named an orchestrator function the app does not define."""


class RequestRejected(DevhostError):
    """devhost answers an HTTP request itself, before any app code, and closes the connection.

    Args:
        status: the HTTP status to answer (4xx, or 501 for an unknown transfer coding).
        message: a short reason for the JSON body (never echoes request data).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
