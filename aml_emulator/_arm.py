"""The ARM Jobs API of the workspace: get, cancel and list (with ``tag``/``properties`` filters).

Batch endpoint jobs are workspace jobs, so ARM serves them next to every other job. What is
served, and where it is written down (Azure/azure-sdk-for-python, azure-ai-ml's generated
client ``_restclient/v2024_04_01_preview/operations/_jobs_operations.py``, the 2024-04-01
``Jobs_*`` operations of azure-rest-api-specs ``.../stable/2024-04-01/mfe.json``):

- ``GET .../workspaces/{ws}/jobs?api-version=...`` (``Jobs_List``; ``build_list_request``,
  L36-76): query ``$skip`` ("Continuation token for pagination"), ``jobType``, ``tag`` ("Jobs
  returned will have this tag key"), ``listViewType`` (``ActiveOnly`` default, ``ArchivedOnly``,
  ``All``) and ``properties`` ("Comma-separated list of property names (and optionally values).
  Example: prop1,prop2=value2"; docstring of ``JobsOperations.list``). The answer is a
  ``JobBaseResourceArmPaginatedResult`` ``{"value": [...], "nextLink": ...}`` followed through
  ``nextLink`` (``extract_data`` in the same method; example
  ``stable/2024-04-01/examples/Job/CommandJob/list.json``).
- ``GET .../jobs/{id}`` (``Jobs_Get``): a ``JobBase`` resource: ``properties.jobType``,
  ``status``, ``tags``, ``properties``, ``experimentName``, ``services`` (same example file).
- ``POST .../jobs/{id}/cancel`` (``Jobs_Cancel``; ``_cancel_initial``): 200, or 202 with
  ``Location`` and ``Retry-After``, polled "final-state-via: location" (``begin_cancel``).
  azure-ai-ml's own ``JobOperations.begin_cancel`` finds jobs with ``self.list(tag=tag)``
  (``operations/_job_operations.py``), i.e. through the ``tag`` filter served here.

What ARM does when a job is already final is not documented; the ``documented`` profile answers
400 ``UserError`` (azureml-assets PR #2496: cancelling a Finalizing job "is an error"), the
``lenient`` profile 200 with no change.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from aml_emulator._config import EmulatorConfig
from aml_emulator._http import ApiError, Response
from aml_emulator._jobs import JobRecord, iso_time, job_id, studio_url, workspace_id
from aml_emulator._store import JobStore

logger = logging.getLogger(__name__)

ARM_API_VERSION = "2023-02-01-preview"  # what azure-ai-ml's begin_cancel sends
ARM_JOB_TYPE = "Microsoft.MachineLearningServices/workspaces/jobs"
LIST_VIEW_TYPES = ("activeonly", "archivedonly", "all")


@dataclass(frozen=True, slots=True, kw_only=True)
class ListQuery:
    """The ``Jobs_List`` filters of one request."""

    tag: str | None = None
    properties: tuple[tuple[str, str | None], ...] = ()
    job_type: str | None = None
    archived_only: bool = False
    before_seq: int | None = None

    def matches(self, job: JobRecord) -> bool:
        """True when ``job`` passes every filter (all ``properties`` terms must hold)."""
        if self.archived_only:
            return False  # the emulator never archives a job
        if self.job_type is not None and self.job_type.lower() != "pipeline":
            return False
        if self.tag is not None and self.tag not in job.spec.tags:
            return False
        props = job.spec.properties
        return all(
            name in props and (value is None or props[name] == value)
            for name, value in self.properties
        )


def _one(query: Mapping[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def parse_properties_filter(text: str) -> tuple[tuple[str, str | None], ...]:
    """``"a,b=c"`` -> ``(("a", None), ("b", "c"))``; empty terms are ignored.

    Raises:
        ApiError: 400 when a term has an empty name.
    """
    terms: list[tuple[str, str | None]] = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        name, sep, value = raw.partition("=")
        if not name.strip():
            raise ApiError(400, "UserError", f"properties: invalid filter term {raw!r}")
        terms.append((name.strip(), value if sep else None))
    return tuple(terms)


def parse_list_query(query: Mapping[str, list[str]]) -> ListQuery:
    """Validate the ``Jobs_List`` query string.

    Raises:
        ApiError: 400 naming the bad parameter.
    """
    view = (_one(query, "listViewType") or "ActiveOnly").lower()
    if view not in LIST_VIEW_TYPES:
        raise ApiError(400, "UserError", f"listViewType: unknown view type {view!r}")
    skip = _one(query, "$skip")
    if skip is not None and not skip.isdigit():
        raise ApiError(400, "UserError", "$skip: invalid continuation token")
    return ListQuery(
        tag=_one(query, "tag"),
        properties=parse_properties_filter(_one(query, "properties") or ""),
        job_type=_one(query, "jobType"),
        archived_only=view == "archivedonly",
        before_seq=int(skip) if skip is not None else None,
    )


def require_api_version(query: Mapping[str, list[str]]) -> None:
    """ARM refuses a request without ``api-version`` (the documented profile does too).

    Raises:
        ApiError: 400 ``MissingApiVersionParameter``.
    """
    if not _one(query, "api-version"):
        raise ApiError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )


def render_arm_job(job: JobRecord, config: EmulatorConfig) -> dict[str, Any]:
    """The ARM ``JobBase`` resource of a batch job (``Jobs_Get`` / ``Jobs_List`` items)."""
    description = job.spec.overrides.get("description")
    props: dict[str, Any] = {
        "jobType": "Pipeline",  # a batch job is a pipeline job (batch-endpoint-rest.md, sec. 3)
        "status": job.status,
        "displayName": job.name,
        "experimentName": job.endpoint,
        "isArchived": False,
        "tags": dict(job.spec.tags),
        "properties": dict(job.spec.properties),
        "services": {"Studio": {"jobServiceType": "Studio", "endpoint": studio_url(job, config)}},
    }
    if description is not None:
        props["description"] = description
    return {
        "id": job_id(config, job.name),
        "name": job.name,
        "type": ARM_JOB_TYPE,
        "properties": props,
        "systemData": {
            "createdAt": iso_time(job.created_at),
            "createdBy": "aml_emulator",
            "createdByType": "User",
        },
    }


def list_jobs(
    store: JobStore,
    config: EmulatorConfig,
    query: Mapping[str, list[str]],
    *,
    base_url: str,
    path: str,
) -> Response:
    """One page of ``Jobs_List``, newest first; ``nextLink`` carries the other filters along.

    The continuation token is the sequence number of the last job on the page, so a job
    created while a client pages is never returned twice, nor does it shift later pages.
    """
    wanted = parse_list_query(query)
    page: list[tuple[int, JobRecord]] = []
    more = False
    for seq, job in store.list_workspace(before_seq=wanted.before_seq):
        if not wanted.matches(job):
            continue
        if len(page) == config.arm_page_size:
            more = True
            break
        page.append((seq, job))
    next_link = None
    if more:
        params = [(k, v) for k, vs in query.items() if k != "$skip" for v in vs]
        params.append(("$skip", str(page[-1][0])))
        next_link = f"{base_url}{path}?{urlencode(params)}"
    return Response(
        200,
        {"value": [render_arm_job(job, config) for _, job in page], "nextLink": next_link},
        {},
    )


def cancel_job(
    store: JobStore,
    config: EmulatorConfig,
    name: str,
    *,
    base_url: str,
    wake: Callable[[], None],
) -> Response:
    """``Jobs_Cancel``: 202 + ``Location`` + ``Retry-After``; the job goes CancelRequested.

    A final job: 400 ``UserError`` (documented profile) or 200 and no change (lenient).

    Raises:
        ApiError: 404 unknown job, 400 final job (documented), 409 when the job keeps changing.
    """
    for _ in range(20):
        job = store.get(name)
        if job is None:
            raise ApiError(404, "UserError", f"Job {name} not found")
        if job.terminal:
            if config.documented:
                raise ApiError(
                    400,
                    "UserError",
                    f"Job {name} is already in a terminal state ({job.status}) "
                    "and cannot be canceled",
                )
            return Response(200, {}, {})
        if job.status == "CancelRequested":
            break
        updated = replace(
            job,
            status="CancelRequested",
            script=(("CancelRequested", config.phase_seconds),),
            phase_index=0,
            phase_started_at=time.time(),
            outcome="Canceled",
            outcome_message=None,
            prepared=True,
        )
        if store.update(updated) is not None:
            logger.info("job %s: %s -> CancelRequested", name, job.status)
            wake()
            break
    else:
        raise ApiError(409, "Conflict", f"Job {name} is changing state; retry the cancel")
    location = f"{base_url}{job_id(config, name)}?api-version={ARM_API_VERSION}"
    retry_after = str(max(1, math.ceil(config.phase_seconds)))
    return Response(202, {}, {"Location": location, "Retry-After": retry_after})


__all__ = [
    "ARM_API_VERSION",
    "ListQuery",
    "cancel_job",
    "list_jobs",
    "parse_list_query",
    "parse_properties_filter",
    "render_arm_job",
    "require_api_version",
    "workspace_id",
]
