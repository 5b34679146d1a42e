"""The emulator's route table: method, path pattern, counter template, handler, fault route.

``handler`` names an ``EmulatorServer._h_<handler>`` method. ``fault_route`` is the route name
faults match ("invoke", "get", "list", "cancel"); ``None`` marks admin and health routes (no
faults, no auth, not counted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ARM_WS = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)/jobs"
)
_ARM_JOB = _ARM_WS + r"/(?P<name>[^/]+)"
_ARM_WS_TEMPLATE = (
    "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/"
    "Microsoft.MachineLearningServices/workspaces/{workspace}/jobs"
)
_ARM_TEMPLATE = _ARM_WS_TEMPLATE + "/{name}"

#: Handlers of the ARM Jobs API (workspace-scoped, management-plane audience).
ARM_HANDLERS = frozenset({"cancel_job", "arm_get_job", "arm_list_jobs"})


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: str
    fault_route: str | None  # None: admin/health, no faults, no auth, not counted


ROUTES: tuple[Route, ...] = (
    Route("GET", re.compile(r"^/healthz$"), "/healthz", "health", None),
    Route(
        "POST",
        re.compile(r"^/endpoints/(?P<endpoint>[^/]+)/jobs/?$"),
        "/endpoints/{endpoint}/jobs",
        "invoke",
        "invoke",
    ),
    Route(
        "GET",
        re.compile(r"^/endpoints/(?P<endpoint>[^/]+)/jobs/?$"),
        "/endpoints/{endpoint}/jobs",
        "list_jobs",
        "list",
    ),
    Route(
        "GET",
        re.compile(r"^/endpoints/(?P<endpoint>[^/]+)/jobs/(?P<name>[^/]+)$"),
        "/endpoints/{endpoint}/jobs/{name}",
        "get_job",
        "get",
    ),
    Route(
        "POST",
        re.compile("^" + _ARM_JOB + "/cancel$", re.IGNORECASE),
        _ARM_TEMPLATE + "/cancel",
        "cancel_job",
        "cancel",
    ),
    Route(
        "GET", re.compile("^" + _ARM_JOB + "$", re.IGNORECASE), _ARM_TEMPLATE, "arm_get_job", "get"
    ),
    Route(
        "GET",
        re.compile("^" + _ARM_WS + "/?$", re.IGNORECASE),
        _ARM_WS_TEMPLATE,
        "arm_list_jobs",
        "list",
    ),
    Route("GET", re.compile(r"^/admin/counters$"), "/admin/counters", "admin_counters", None),
    Route(
        "POST", re.compile(r"^/admin/reset-counters$"), "/admin/reset-counters", "admin_reset", None
    ),
    Route("GET", re.compile(r"^/admin/stats$"), "/admin/stats", "admin_stats", None),
    Route("GET", re.compile(r"^/admin/active-jobs$"), "/admin/active-jobs", "admin_active", None),
    Route("GET", re.compile(r"^/admin/faults$"), "/admin/faults", "admin_list_faults", None),
    Route("POST", re.compile(r"^/admin/faults$"), "/admin/faults", "admin_add_fault", None),
    Route("DELETE", re.compile(r"^/admin/faults$"), "/admin/faults", "admin_clear_faults", None),
    Route(
        "GET", re.compile(r"^/admin/jobs/(?P<name>[^/]+)$"), "/admin/jobs/{name}", "admin_job", None
    ),
    Route(
        "POST",
        re.compile(r"^/admin/jobs/(?P<name>[^/]+)/script$"),
        "/admin/jobs/{name}/script",
        "admin_script",
        None,
    ),
)
