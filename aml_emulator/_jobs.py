"""Batch job requests and records: parse an invoke body, render a ``BatchJobResource``.

Body keys are matched case-insensitively, so the PascalCase body of the docs/ADF
(``InputData``/``JobInputType``/``Uri``) and the camelCase body of azure-ai-ml
(``inputData``/``jobInputType``/``uri``) are the same request. Every rejection is a
:class:`RequestError` whose message names the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aml_emulator._config import EmulatorConfig
from aml_emulator._storage import is_blob_url, is_data_asset, parse_datastore_uri, strip_query

JOB_TYPE = "Microsoft.MachineLearningServices/workspaces/batchEndpoints/jobs"
DEFAULT_OUTPUT_NAME = "score"
DEFAULT_OUTPUT_FILE = "predictions.csv"
INPUT_TYPES: Mapping[str, str] = {"urifolder": "UriFolder", "urifile": "UriFile"}
OUTPUT_TYPES: Mapping[str, str] = {"urifile": "UriFile", "urifolder": "UriFolder"}
UNSUPPORTED_INPUT_TYPES = {"mltable", "custommodel", "mlflowmodel", "tritonmodel"}
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
_FILE_NAME_RE = re.compile(r"^[^/\\]+$")
_DURATION_RE = re.compile(r"^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$")

# properties.* keys accepted (lower-cased) -> canonical camelCase name used in the echo.
_OVERRIDES: Mapping[str, str] = {
    "minibatchsize": "miniBatchSize",
    "compute": "compute",
    "errorthreshold": "errorThreshold",
    "retrysettings": "retrySettings",
    "outputfilename": "outputFileName",
    "logginglevel": "loggingLevel",
    "maxconcurrencyperinstance": "maxConcurrencyPerInstance",
    "description": "description",
    "partitionkeys": "partitionKeys",
}
_KNOWN_PROPERTIES = {
    "inputdata",
    "outputdata",
    "name",
    "tags",
    "properties",
    "outputdataset",
    "dataset",
    *_OVERRIDES,
}


class RequestError(ValueError):
    """A bad invoke request: 400 with ``code`` and a message naming the field."""

    def __init__(self, message: str, *, code: str = "UserError") -> None:
        super().__init__(message)
        self.code = code


def ci(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Lower-case the keys of a JSON object (for case-insensitive matching)."""
    return {str(k).lower(): v for k, v in obj.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpec:
    """What a job was asked to do, as parsed from the invoke body."""

    name: str | None
    input_name: str
    input_type: str
    input_uri: str
    output_name: str
    output_type: str
    output_uri: str | None
    output_file_name: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form stored in the state file."""
        return {
            "name": self.name,
            "input_name": self.input_name,
            "input_type": self.input_type,
            "input_uri": self.input_uri,
            "output_name": self.output_name,
            "output_type": self.output_type,
            "output_uri": self.output_uri,
            "output_file_name": self.output_file_name,
            "overrides": dict(self.overrides),
            "tags": dict(self.tags),
            "properties": dict(self.properties),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecord:
    """One job's stored state. ``script`` is the remaining phase plan, ``outcome`` its end."""

    name: str
    endpoint: str
    deployment: str
    spec: JobSpec
    request_id: str | None
    created_at: float
    status: str
    phase_index: int
    phase_started_at: float
    script: tuple[tuple[str, float], ...]
    outcome: str
    outcome_message: str | None = None
    prepared: bool = False
    error_message: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    rows_scored: int = 0
    files_scored: int = 0
    version: int = 0

    @property
    def terminal(self) -> bool:
        """True once the job is Completed, Failed or Canceled."""
        return self.status in ("Completed", "Failed", "Canceled")

    @property
    def output_uri(self) -> str:
        """The output URI the job writes (explicit or the service's default path)."""
        if self.spec.output_uri:
            return self.spec.output_uri
        file_name = self.spec.output_file_name or DEFAULT_OUTPUT_FILE
        return (
            "azureml://datastores/workspaceblobstore/paths/azureml/"
            f"{self.name}/{self.spec.output_name}/{file_name}"
        )

    @property
    def output_file_uri(self) -> str:
        """The URI of the predictions *file* (a folder output gets ``predictions.csv`` inside)."""
        if self.spec.output_type == "UriFolder" and self.spec.output_uri:
            file_name = self.spec.output_file_name or DEFAULT_OUTPUT_FILE
            return self.output_uri.rstrip("/") + "/" + file_name
        return self.output_uri


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestError(f"{where}: must be a JSON object", code="BadRequest")
    return ci(value)


def _int(value: object, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RequestError(f"{where}: must be an integer >= {minimum}, got {value!r}")
    return value


def _parse_input(props: Mapping[str, Any]) -> tuple[str, str, str]:
    if "dataset" in props:
        raise RequestError(
            "properties.dataset: V1 dataset inputs are not supported by this endpoint; "
            "use properties.inputData"
        )
    if props.get("inputdata") is None:
        raise RequestError("properties.inputData: is required (one UriFolder or UriFile input)")
    inputs = props["inputdata"]
    if not isinstance(inputs, dict):
        raise RequestError("properties.inputData: must be an object {name: input}")
    if len(inputs) != 1:
        names = ", ".join(inputs) or "none"
        raise RequestError(
            "properties.inputData: model deployments take exactly one data input, "
            f"got {len(inputs)} ({names})"
        )
    ((name, raw),) = inputs.items()
    where = f"properties.inputData.{name}"
    item = _obj(raw, where)
    kind = item.get("jobinputtype")
    if not isinstance(kind, str) or not kind:
        raise RequestError(f"{where}.jobInputType: is required (UriFolder or UriFile)")
    if kind.lower() == "literal":
        raise RequestError(
            f"{where}.jobInputType: Literal inputs are not supported by model deployments"
        )
    if kind.lower() in UNSUPPORTED_INPUT_TYPES:
        raise RequestError(
            f"{where}.jobInputType: {kind!r} is not supported by batch endpoints "
            "(use UriFolder or UriFile)"
        )
    if kind.lower() not in INPUT_TYPES:
        raise RequestError(f"{where}.jobInputType: unknown input type {kind!r}")
    uri = item.get("uri")
    if not isinstance(uri, str) or not uri.strip():
        raise RequestError(f"{where}.uri: is required (a datastore path or blob URL)")
    uri = uri.strip()
    if not (parse_datastore_uri(uri) or is_data_asset(uri) or is_blob_url(uri)):
        raise RequestError(
            f"{where}.uri: {strip_query(uri)[:200]!r} is not a datastore path "
            "(azureml://datastores/<ds>/paths/<path>), data asset or blob URL"
        )
    input_type = INPUT_TYPES[kind.lower()]
    if input_type == "UriFile" and strip_query(uri).endswith("/"):
        raise RequestError(f"{where}.uri: a UriFile input must name a file, not a folder")
    return str(name), input_type, uri


def _parse_output(props: Mapping[str, Any], file_name: str | None) -> tuple[str, str, str | None]:
    legacy = props.get("outputdataset")
    if props.get("outputdata") is None and legacy is not None:
        # azure-ai-ml rewrites the legacy shape the same way.
        item = _obj(legacy, "properties.outputDataset")
        ds = item.get("datastoreid")
        path = item.get("path", "")
        if not isinstance(ds, str) or not ds or not isinstance(path, str):
            raise RequestError("properties.outputDataset: needs datastoreId and path strings")
        legacy_uri = (
            f"azureml://datastores/{ds.rstrip('/').rsplit('/', 1)[-1]}/paths/"
            f"{path.strip('/')}/{file_name or DEFAULT_OUTPUT_FILE}"
        )
        return DEFAULT_OUTPUT_NAME, "UriFile", legacy_uri
    if props.get("outputdata") is None:
        return DEFAULT_OUTPUT_NAME, "UriFile", None
    outputs = props["outputdata"]
    if not isinstance(outputs, dict):
        raise RequestError("properties.outputData: must be an object {name: output}")
    if len(outputs) != 1:
        raise RequestError(
            f"properties.outputData: model deployments take exactly one output, got {len(outputs)}"
        )
    ((out_name, raw),) = outputs.items()
    name = str(out_name)
    where = f"properties.outputData.{name}"
    item = _obj(raw, where)
    kind = item.get("joboutputtype", "UriFile")
    if not isinstance(kind, str) or kind.lower() not in OUTPUT_TYPES:
        raise RequestError(f"{where}.jobOutputType: must be UriFile or UriFolder, got {kind!r}")
    uri = item.get("uri")
    if not isinstance(uri, str) or not uri.strip():
        raise RequestError(f"{where}.uri: is required (azureml://datastores/<ds>/paths/<file>)")
    uri = uri.strip()
    if parse_datastore_uri(uri) is None:
        raise RequestError(
            f"{where}.uri: outputs must be a datastore path "
            f"(azureml://datastores/<ds>/paths/<file>), got {strip_query(uri)[:200]!r}"
        )
    output_type = OUTPUT_TYPES[kind.lower()]
    if output_type == "UriFile" and uri.endswith("/"):
        raise RequestError(f"{where}.uri: a UriFile output must name a file, not a folder")
    return str(name), output_type, uri


def _compute(value: object) -> dict[str, Any]:
    count = _obj(value, "properties.compute").get("instancecount")
    return (
        {}
        if count is None
        else {"instanceCount": _int(count, "properties.compute.instanceCount", 1)}
    )


def _retry_settings(value: object) -> dict[str, Any]:
    retry = _obj(value, "properties.retrySettings")
    echo: dict[str, Any] = {}
    if retry.get("maxretries") is not None:
        echo["maxRetries"] = _int(retry["maxretries"], "properties.retrySettings.maxRetries", 0)
    timeout = retry.get("timeout")
    if timeout is not None:
        if not isinstance(timeout, str) or not _DURATION_RE.match(timeout) or timeout == "P":
            raise RequestError(
                "properties.retrySettings.timeout: must be an ISO-8601 duration such as "
                f"'PT30S', got {timeout!r}"
            )
        echo["timeout"] = timeout
    return echo


def _output_file_name(name: object) -> str:
    if not isinstance(name, str) or not _FILE_NAME_RE.match(name) or name in (".", ".."):
        raise RequestError(f"properties.outputFileName: must be a plain file name, got {name!r}")
    return name


def _logging_level(level: object) -> str:
    if level not in ("Info", "Warning", "Debug"):
        raise RequestError(
            f"properties.loggingLevel: must be Info, Warning or Debug, got {level!r}"
        )
    assert isinstance(level, str)
    return level


def _description(value: object) -> str:
    if not isinstance(value, str):
        raise RequestError("properties.description: must be a string")
    return value


def _partition_keys(keys: object) -> list[str]:
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise RequestError("properties.partitionKeys: must be a list of strings")
    return keys


#: lower-cased wire key -> its parser (raises RequestError); echoed under ``_OVERRIDES[key]``.
_OVERRIDE_PARSERS: dict[str, Callable[[Any], Any]] = {
    "minibatchsize": lambda v: _int(v, "properties.miniBatchSize", 1),
    "compute": _compute,
    "errorthreshold": lambda v: _int(v, "properties.errorThreshold", -1),
    "retrysettings": _retry_settings,
    "outputfilename": _output_file_name,
    "logginglevel": _logging_level,
    "maxconcurrencyperinstance": lambda v: _int(v, "properties.maxConcurrencyPerInstance", 1),
    "description": _description,
    "partitionkeys": _partition_keys,
}


def _parse_overrides(props: Mapping[str, Any]) -> dict[str, Any]:
    return {
        _OVERRIDES[key]: parse(props[key])
        for key, parse in _OVERRIDE_PARSERS.items()
        if key in props
    }


def _str_map(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise RequestError(f"{where}: must be an object of string values")
    return {str(k): v for k, v in value.items()}


def parse_job_request(body: object) -> JobSpec:
    """Validate an invoke body (either casing).

    Raises:
        RequestError: naming the first bad field.
    """
    if not isinstance(body, dict):
        raise RequestError(
            "body: must be a JSON object with a 'properties' object", code="BadRequest"
        )
    top = ci(body)
    if top.get("properties") is None:
        raise RequestError("properties: is required", code="BadRequest")
    props = _obj(top["properties"], "properties")
    for key in props:
        if key not in _KNOWN_PROPERTIES:
            raise RequestError(f"properties.{key}: unknown property")
    name = props.get("name")
    if name is not None and (not isinstance(name, str) or not JOB_NAME_RE.match(name)):
        raise RequestError(
            "properties.name: a job name is 1-255 letters, digits, '-' or '_' and starts with "
            f"a letter or digit, got {name!r}"
        )
    input_name, input_type, input_uri = _parse_input(props)
    overrides = _parse_overrides(props)
    output_name, output_type, output_uri = _parse_output(props, overrides.get("outputFileName"))
    tags = _str_map(props["tags"], "properties.tags") if props.get("tags") is not None else {}
    user_props = (
        _str_map(props["properties"], "properties.properties")
        if props.get("properties") is not None
        else {}
    )
    return JobSpec(
        name=name,
        input_name=input_name,
        input_type=input_type,
        input_uri=input_uri,
        output_name=output_name,
        output_type=output_type,
        output_uri=output_uri,
        output_file_name=overrides.get("outputFileName"),
        overrides=overrides,
        tags=tags,
        properties=user_props,
    )


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def workspace_id(config: EmulatorConfig) -> str:
    """The workspace ARM id."""
    return (
        f"/subscriptions/{config.subscription_id}/resourceGroups/{config.resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{config.workspace}"
    )


def studio_url(job: JobRecord, config: EmulatorConfig) -> str:
    """The job's Studio page (``interactionEndpoints.Studio.endpoint``)."""
    return f"https://ml.azure.com/runs/{job.name}?wsid={workspace_id(config)}"


def job_id(config: EmulatorConfig, name: str) -> str:
    """The job ARM id; its last segment is the job name."""
    return f"{workspace_id(config)}/jobs/{name}"


def data_plane_id(job: JobRecord, config: EmulatorConfig) -> str:
    """The ``id`` of the data-plane job resource.

    Its format is not documented (batch-endpoint-rest.md, Unconfirmed 3): Azure/azureml-examples
    ``cli/batch-score-rest.sh`` only takes its last path segment (``${JOB_ID##/*/}``). The
    documented profile answers the bare job name, so a client cannot read the workspace out of
    it; the lenient profile the workspace job's ARM id.
    """
    return job.name if config.documented else job_id(config, job.name)


def provisioning_state(status: str) -> str:
    """ARM provisioning state for a job status."""
    return {"Completed": "Succeeded", "Failed": "Failed", "Canceled": "Canceled"}.get(
        status, "InProgress"
    )


def render_job(job: JobRecord, config: EmulatorConfig) -> dict[str, Any]:
    """The ``BatchJobResource`` envelope for a job (invoke, GET, list, ARM GET)."""
    spec = job.spec
    props: dict[str, Any] = {
        "status": job.status,
        "provisioningState": provisioning_state(job.status),
        "inputData": {
            spec.input_name: {"jobInputType": spec.input_type, "uri": strip_query(spec.input_uri)}
        },
        "outputData": {
            spec.output_name: {"jobOutputType": spec.output_type, "uri": job.output_uri}
        },
        "interactionEndpoints": {"Studio": {"endpoint": studio_url(job, config)}},
        "output": {
            "datastoreId": f"{workspace_id(config)}/datastores/workspaceblobstore",
            "path": f"azureml/{job.name}/{spec.output_name}",
        },
        "properties": {
            **spec.properties,
            "rowsScored": str(job.rows_scored),
            "filesScored": str(job.files_scored),
        },
        "tags": dict(spec.tags),
        "deployment": job.deployment,
        "endpoint": job.endpoint,
        **spec.overrides,
    }
    # The swagger's BatchJob has no error field (additionalProperties: false; mfe.json
    # 2020-09-01-dataplanepreview, #/definitions/BatchJob): the documented profile shows none.
    if job.status == "Failed" and job.error_message and not config.documented:
        props["errorMessage"] = job.error_message
    if job.start_time is not None:
        props["startTime"] = iso_time(job.start_time)
    if job.end_time is not None:
        props["endTime"] = iso_time(job.end_time)
    return {
        "id": data_plane_id(job, config),
        "name": job.name,
        "type": JOB_TYPE,
        "properties": props,
        "systemData": {
            "createdAt": iso_time(job.created_at),
            "createdBy": "aml_emulator",
            "createdByType": "User",
        },
    }
