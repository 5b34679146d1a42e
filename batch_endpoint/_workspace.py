"""Workspace ARM ids: read one, and find the workspace a job lives in.

Free of ``requests`` so that reading settings (``AML_WORKSPACE_ID``) loads no HTTP stack.
"""

import re

from batch_endpoint._models import BatchJob

# Segments never start with "." (no "." or ".." path segments that a client would normalise).
_ARM_WORKSPACE = re.compile(
    r"^/subscriptions/[A-Za-z0-9_()-][A-Za-z0-9._()-]*"
    r"/resourceGroups/[A-Za-z0-9_()-][A-Za-z0-9._()-]*"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/[A-Za-z0-9_-][A-Za-z0-9._-]*",
    re.IGNORECASE,
)
_ARM_WORKSPACE_ID = re.compile(_ARM_WORKSPACE.pattern + r"\Z", re.IGNORECASE)


def parse_workspace_id(text: str) -> str:
    """Validate a workspace ARM id and return it without a trailing ``/``.

    Raises:
        ValueError: Not ``/subscriptions/<s>/resourceGroups/<rg>/providers/``
            ``Microsoft.MachineLearningServices/workspaces/<ws>``.
    """
    value = text.strip().rstrip("/") if isinstance(text, str) else ""
    if not _ARM_WORKSPACE_ID.match(value):
        raise ValueError(
            "must be a workspace ARM id: /subscriptions/<id>/resourceGroups/<rg>/providers/"
            "Microsoft.MachineLearningServices/workspaces/<name>"
        )
    return value


def workspace_of(job: BatchJob, workspace_id: str | None) -> str:
    """The workspace to address ``job`` in: the configured one, else the one in ``job.id``.

    Raises:
        ValueError: No workspace is configured and ``job.id`` does not name one (the message
            names ``AML_WORKSPACE_ID``).
    """
    if workspace_id:
        return parse_workspace_id(workspace_id)
    match = _ARM_WORKSPACE.match(job.id)
    if match is None:
        raise ValueError(
            f"cannot address job {job.name} through ARM: its id is not a workspace ARM id; "
            "set AML_WORKSPACE_ID to the workspace's ARM id"
        )
    return match.group(0)
