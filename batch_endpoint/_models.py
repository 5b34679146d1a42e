"""The service's job resource (:class:`BatchJob`) and an invocation of the endpoint.

:class:`JobInvocation` is what ``POST {scoringUri}`` sends: inputs, outputs and per-job
overrides, in the PascalCase body the batch endpoint data plane expects
(``2020-09-01-dataplanepreview``). Payload keys of responses are matched case-insensitively.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batch_endpoint._errors import redact_text, redact_url
from batch_endpoint._status import JobStatus, is_final

_MAX_ERROR_MESSAGE = 1000
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}\Z")
# Studio in the public and sovereign clouds; any other link from a service answer is dropped.
_STUDIO_LINK = re.compile(
    r"^https://(?:[a-z0-9-]+\.)*ml\.azure\.(?:com|us|cn)/[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*\Z",
    re.IGNORECASE,
)


def _studio_link(value: object) -> str | None:
    """The Studio link when it is an https link to Azure ML studio, else None."""
    return value if isinstance(value, str) and _STUDIO_LINK.match(value) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobInvocation:
    """One job submission: the body of ``POST {scoringUri}`` and its deployment header.

    Attributes:
        input_name: Key in ``InputData``.
        input_type: ``UriFolder`` or ``UriFile``.
        input_uri: The input data URI.
        output_name: Key in ``OutputData``.
        output_uri: The output file URI.
        deployment_name: Sent as ``azureml-model-deployment`` when set.
        overrides: Per-job settings already in wire form (``MiniBatchSize``, ``Compute``, ...).
        tags: Job tags (``Tags``); the ARM Jobs list filters on a tag key.
        properties: Job properties (``Properties``); the ARM Jobs list filters on
            ``name=value``, which is how a client finds its job after an ambiguous invoke.
    """

    input_name: str
    input_type: str
    input_uri: str
    output_name: str
    output_uri: str
    deployment_name: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)

    def body(self, job_name: str | None = None) -> dict[str, Any]:
        """The PascalCase invoke body (``{"properties": {"InputData": ..., ...}}``).

        Args:
            job_name: Custom job name sent as ``properties.Name`` (omitted when None).
        """
        props: dict[str, Any] = {
            "InputData": {
                self.input_name: {"JobInputType": self.input_type, "Uri": self.input_uri}
            },
            "OutputData": {self.output_name: {"JobOutputType": "UriFile", "Uri": self.output_uri}},
            **self.overrides,
        }
        if self.tags:
            props["Tags"] = dict(self.tags)
        if self.properties:
            props["Properties"] = dict(self.properties)
        if job_name is not None:
            props["Name"] = job_name
        return {"properties": props}


def _ci_get(obj: object, *keys: str) -> object:
    """Follow ``keys`` through nested mappings, matching each key case-insensitively."""
    current = obj
    for key in keys:
        if not isinstance(current, Mapping):
            return None
        if key in current:
            current = current[key]
            continue
        lowered = key.lower()
        for k, v in current.items():
            if isinstance(k, str) and k.lower() == lowered:
                current = v
                break
        else:
            return None
    return current


def _first_uri(data: object) -> str | None:
    if not isinstance(data, Mapping):
        return None
    for entry in data.values():
        uri = _ci_get(entry, "uri")
        if isinstance(uri, str) and uri:
            return redact_url(uri) if ("?" in uri or "@" in uri) else uri
    return None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchJob:
    """What we keep of a batch job resource (``BatchJobResource``).

    Attributes:
        name: The job name (last segment of ``id``); used to poll it.
        id: The job's resource id (``""`` if the service sent none); ARM cancel needs it.
        status: The job status.
        studio_url: Link to the job in Azure ML studio.
        output_uri: The first output's URI (query string removed).
        input_uri: The first input's URI (query string removed).
        error_message: The service's error message for failed jobs (redacted, truncated).
        created_at: ``systemData.createdAt`` as sent.
    """

    name: str
    id: str
    status: JobStatus
    studio_url: str | None = None
    output_uri: str | None = None
    input_uri: str | None = None
    error_message: str | None = None
    created_at: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("BatchJob.name must be a non-empty string")
        if not isinstance(self.status, JobStatus):
            object.__setattr__(self, "status", JobStatus.parse(self.status))

    @classmethod
    def from_response(cls, payload: object) -> "BatchJob":
        """Parse a job resource, PascalCase or camelCase (keys matched case-insensitively).

        Args:
            payload: The decoded JSON response.

        Returns:
            The job.

        Raises:
            ValueError: The payload is not an object or has neither ``name`` nor ``id``.
        """
        if not isinstance(payload, Mapping):
            raise ValueError("job response must be a JSON object")
        job_id = _opt_str(_ci_get(payload, "id")) or ""
        name = _opt_str(_ci_get(payload, "name"))
        if name is None and job_id:
            name = job_id.rstrip("/").rsplit("/", 1)[-1] or None
        if name is None:
            raise ValueError("job response has neither 'name' nor 'id'")
        if not _JOB_NAME.match(name):
            # The name is logged, shown and put into URLs: refuse anything but a plain name.
            raise ValueError("job response has a name that is not a plain job name")
        props = _ci_get(payload, "properties")
        raw_status = _ci_get(props, "status")
        if raw_status is None:
            raw_status = _ci_get(payload, "status")
        studio = _ci_get(props, "interactionEndpoints", "Studio", "endpoint") or _ci_get(
            props, "services", "Studio", "endpoint"
        )
        error = (
            _ci_get(props, "error", "message")
            or _ci_get(props, "errorMessage")
            or _ci_get(payload, "error", "message")
        )
        error_message = (
            redact_text(error, limit=_MAX_ERROR_MESSAGE)
            if isinstance(error, str) and error
            else None
        )
        return cls(
            name=name,
            id=job_id,
            status=JobStatus.parse(raw_status),
            studio_url=_studio_link(studio),
            output_uri=_first_uri(_ci_get(props, "outputData")),
            input_uri=_first_uri(_ci_get(props, "inputData")),
            error_message=error_message,
            created_at=_opt_str(_ci_get(payload, "systemData", "createdAt")),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``status`` as its wire string) for crossing activity boundaries."""
        return {
            "name": self.name,
            "id": self.id,
            "status": self.status.value,
            "studio_url": self.studio_url,
            "output_uri": self.output_uri,
            "input_uri": self.input_uri,
            "error_message": self.error_message,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, d: object) -> "BatchJob":
        """Rebuild a job from :meth:`to_dict` output.

        Raises:
            ValueError: ``d`` is not a dict or has no non-empty ``name``.
        """
        if not isinstance(d, Mapping):
            raise ValueError("BatchJob.from_dict needs a dict")
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("BatchJob.from_dict: 'name' must be a non-empty string")
        return cls(
            name=name,
            id=str(d.get("id") or ""),
            status=JobStatus.parse(d.get("status")),
            studio_url=_opt_str(d.get("studio_url")),
            output_uri=_opt_str(d.get("output_uri")),
            input_uri=_opt_str(d.get("input_uri")),
            error_message=_opt_str(d.get("error_message")),
            created_at=_opt_str(d.get("created_at")),
        )

    @property
    def is_final(self) -> bool:
        """Whether the job reached ``Completed``, ``Failed`` or ``Canceled``."""
        return is_final(self.status)
