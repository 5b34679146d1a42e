"""The emulator's HTTP server: data plane, ARM cancel, admin routes.

Routes (``{...}`` are path parameters)::

    GET    /healthz
    POST   /endpoints/{endpoint}/jobs                  invoke (the scoring URI)
    GET    /endpoints/{endpoint}/jobs                  list jobs ({"value": [...], "nextLink"})
    GET    /endpoints/{endpoint}/jobs/{name}           get a job
    POST   /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/
           workspaces/{ws}/jobs/{name}/cancel          ARM cancel (202 + Location + Retry-After)
    GET    /subscriptions/.../workspaces/{ws}/jobs/{name}   ARM get (the cancel Location)
    GET    /subscriptions/.../workspaces/{ws}/jobs     ARM list (tag/properties filters, nextLink)
    GET    /admin/counters      POST /admin/reset-counters
    GET    /admin/active-jobs   (jobs not final now, and the peak since the last reset)
    GET|POST|DELETE /admin/faults      GET /admin/jobs/{name}      POST /admin/jobs/{name}/script

The contract profile (``config.contract``, ``documented`` or ``lenient``) decides what the
service leaves unsaid; see the README, "Profiles".

Use it as a library with ``EmulatorServer(config).start()`` / ``.port`` / ``.stop()``.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
import time
import uuid
from dataclasses import replace
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aml_emulator._arm import cancel_job, list_jobs, render_arm_job, require_api_version
from aml_emulator._config import (
    ConfigError,
    EmulatorConfig,
    EndpointConfig,
    FaultSpec,
    parse_fault,
    parse_script,
)
from aml_emulator._faults import Counters, FaultRegistry, RequestFaults
from aml_emulator._http import (
    ApiError,
    RequestHandler,
    Response,
    error_body,
    json_body,
    token_audiences,
)
from aml_emulator._jobs import JobRecord, RequestError, parse_job_request, render_job
from aml_emulator._routes import ARM_HANDLERS, ROUTES, Route
from aml_emulator._storage import Storage
from aml_emulator._store import JobExistsError, JobStore
from aml_emulator._worker import JobWorker

logger = logging.getLogger(__name__)

DATA_PLANE_AUDIENCES = frozenset({"https://ml.azure.com", "https://ml.azure.com/"})
ARM_AUDIENCES = frozenset({"https://management.azure.com", "https://management.azure.com/"})
DEFAULT_PHASES = ("NotStarted", "Queued", "Preparing", "Running", "Finalizing")
NO_DEPLOYMENT_MESSAGE = (
    "No valid deployments to route to. Please check that the endpoint has at least one "
    "deployment with positive weight values or use a deployment specific header to route."
)
LIST_PAGE_SIZE = 100


class EmulatorServer:
    """The batch endpoint emulator: HTTP server + job worker + SQLite state."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.counters = Counters()
        self.faults = FaultRegistry()
        for endpoint in config.endpoints.values():
            for fault in endpoint.faults:
                self.faults.add(replace(fault, endpoint=fault.endpoint or endpoint.name))
        self._store: JobStore | None = None
        self._storage: Storage | None = None
        self._worker: JobWorker | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._create_lock = threading.Lock()
        # Documented profile: invoke answers 201, 200, 201, ... (BatchJobEndpoint_Create lists
        # both, mfe.json 2020-09-01-dataplanepreview; azure-ai-ml's validate_response in
        # _endpoint_utils.py accepts both).
        self._invoke_codes = itertools.cycle((201, 200))

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the real one when configured with port 0)."""
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>``."""
        return f"http://{self.config.host}:{self.port}"

    def start(self) -> EmulatorServer:
        """Open the state, start the worker (resuming jobs) and serve in a background thread.

        Raises:
            OSError: the address cannot be bound (nothing is left open).
            ValueError: the storage connection string is not usable.
        """
        self._store = JobStore(self.config.state_path)
        try:
            self._storage = Storage(self.config.storage_connection_string, self.config.datastores)
            handler = type("Handler", (RequestHandler,), {"emulator": self})
            self._httpd = ThreadingHTTPServer((self.config.host, self.config.port), handler)
        except Exception:
            self.stop()
            raise
        self._httpd.daemon_threads = True
        self._worker = JobWorker(self._store, self._storage)
        self._worker.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="aml-http", daemon=True
        )
        self._thread.start()
        logger.info("serving on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, stop the worker and close the state (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._storage is not None:
            self._storage.close()
            self._storage = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def store(self) -> JobStore:
        """The job store (only while started)."""
        if self._store is None:
            raise RuntimeError("the server is not started")
        return self._store

    # --- request handling -----------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response:
        """Route one request; every failure becomes an error body, never a traceback."""
        parts = urlsplit(raw_path)
        path = parts.path
        query = parse_qs(parts.query)
        route, params = self._match(method, path)
        try:
            if route is None:
                if params.get("__allowed__"):
                    raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on {path}")
                raise ApiError(404, "NotFound", f"No route for {method} {path}")
            params = {k: unquote(v) for k, v in params.items()}
            if route.fault_route is not None:
                return self._data_call(route, params, query, headers, body)
            result: Response = getattr(self, "_h_" + route.handler)(params, query, headers, body)
            return result
        except ApiError as exc:
            return Response(exc.status, error_body(exc.code, exc.message), exc.headers)
        except Exception:
            logger.exception("unexpected error handling %s %s", method, path)
            return Response(
                500, error_body("InternalServerError", "An unexpected error occurred"), {}
            )

    @staticmethod
    def _match(method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        allowed = False
        for route in ROUTES:
            match = route.pattern.match(path)
            if match:
                if route.method == method:
                    return route, match.groupdict()
                allowed = True
        return None, {"__allowed__": "1"} if allowed else {}

    def _data_call(
        self,
        route: Route,
        params: dict[str, str],
        query: dict[str, list[str]],
        headers: Any,
        body: bytes,
    ) -> Response:
        self.counters.count_route(f"{route.method} {route.template}")
        name = params.get("name")
        if name is not None:
            self.counters.count_job(name, "cancel" if route.fault_route == "cancel" else "get")
        endpoint_name = params.get("endpoint")
        if endpoint_name is None and name is not None:
            job = self.store.get(name)
            endpoint_name = job.endpoint if job else None
        assert route.fault_route is not None
        fault = self.faults.for_request(route.fault_route, endpoint_name, name)
        if fault.delay > 0:
            time.sleep(fault.delay)  # the injected slowness itself, not a synchronisation
        try:
            result = self._checked_call(route, params, query, headers, body, fault, endpoint_name)
        except ApiError as exc:
            if fault.drop is None:
                raise
            result = Response(exc.status, error_body(exc.code, exc.message), exc.headers)
        if fault.drop is not None:
            logger.info("dropping the answer to %s %s (fault)", route.method, route.template)
            return replace(result, drop=fault.drop)
        return result

    def _checked_call(
        self,
        route: Route,
        params: dict[str, str],
        query: dict[str, list[str]],
        headers: Any,
        body: bytes,
        fault: RequestFaults,
        endpoint_name: str | None,
    ) -> Response:
        if fault.status is not None:
            self._raise_fault(fault)
        token = self._bearer(headers)
        arm = route.handler in ARM_HANDLERS
        if arm:
            self._check_workspace(params)
            if self.config.documented:
                require_api_version(query)
        endpoint = self._endpoint(endpoint_name) if not arm else None
        if arm and endpoint_name is not None:
            endpoint = self.config.endpoints.get(endpoint_name)
        # The workspace-wide ARM list wants the management audience as soon as any endpoint
        # checks audiences; a job route checks its job's endpoint (unknown job: 404 below).
        strict = (
            endpoint.reject_audience
            if endpoint is not None
            else route.handler == "arm_list_jobs"
            and any(e.reject_audience for e in self.config.endpoints.values())
        )
        if strict and not token_audiences(token) & (ARM_AUDIENCES if arm else DATA_PLANE_AUDIENCES):
            raise ApiError(
                401,
                "InvalidAuthenticationTokenAudience",
                "Audience or service not allowed",
                {"WWW-Authenticate": "Bearer"},
            )
        result: Response = getattr(self, "_h_" + route.handler)(
            {**params, "endpoint": endpoint_name}, query, headers, body
        )
        return result

    @staticmethod
    def _raise_fault(fault: RequestFaults) -> None:
        assert fault.status is not None
        extra = {}
        if fault.retry_after is not None:
            extra["Retry-After"] = str(math.ceil(fault.retry_after))
        phrase = HTTPStatus(fault.status).phrase
        default_code = {400: "UserError", 403: "AuthorizationFailed", 404: "UserError"}.get(
            fault.status, phrase.replace(" ", "")
        )
        raise ApiError(
            fault.status,
            fault.code or default_code,
            fault.message or f"{phrase} (fault injected by aml_emulator)",
            extra,
        )

    @staticmethod
    def _bearer(headers: Any) -> str:
        value = headers.get("Authorization") or ""
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing or is not a "
                "Bearer token.",
                {"WWW-Authenticate": "Bearer"},
            )
        return token.strip()

    def _check_workspace(self, params: dict[str, str]) -> None:
        c = self.config
        if (params["sub"].lower(), params["rg"].lower(), params["ws"].lower()) != (
            c.subscription_id.lower(),
            c.resource_group.lower(),
            c.workspace.lower(),
        ):
            raise ApiError(
                404,
                "ResourceNotFound",
                f"Workspace '{params['ws']}' was not found in resource group "
                f"'{params['rg']}' of subscription '{params['sub']}'",
            )

    def _endpoint(self, name: str | None) -> EndpointConfig:
        endpoint = self.config.endpoints.get(name or "")
        if endpoint is None:
            raise ApiError(404, "UserError", f"Endpoint '{name}' not found")
        return endpoint

    def _job(self, name: str, endpoint: str | None = None) -> JobRecord:
        job = self.store.get(name)
        if job is None or (endpoint is not None and job.endpoint != endpoint):
            raise ApiError(404, "UserError", f"Job {name} not found")
        return job

    def _ok(self, job: JobRecord, status: int = 200) -> Response:
        return Response(status, render_job(job, self.config), {})

    def _base(self, headers: Any) -> str:
        return f"http://{headers.get('Host') or f'{self.config.host}:{self.port}'}"

    # --- data plane -----------------------------------------------------------------------

    def _h_health(self, *_: Any) -> Response:
        return Response(200, {"status": "ok"}, {})

    def _h_invoke(self, params: dict[str, str], _q: Any, headers: Any, body: bytes) -> Response:
        endpoint = self._endpoint(params["endpoint"])
        deployment = self._route_deployment(endpoint, headers)
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(
                400, "BadRequest", f"body: the request body is not valid JSON ({exc})"
            ) from None
        if payload is None:
            raise ApiError(400, "BadRequest", "body: a JSON object with 'properties' is required")
        try:
            spec = parse_job_request(payload)
        except RequestError as exc:
            raise ApiError(400, exc.code, str(exc)) from None
        request_id = (
            headers.get("repeatability_request-id")
            or headers.get("repeatability-request-id")
            or None
        )
        documented = self.config.documented
        if documented:
            # Neither is honoured by the documented contract: the swagger has no such header
            # (mfe.json 2020-09-01-dataplanepreview, BatchJobEndpoint_Create) and azure-ai-ml
            # sends `name` only under private preview (_batch_endpoint_operations.py, invoke;
            # azure-sdk-for-python#32763: job_name "does nothing"). Every invoke is a new job.
            logger.debug("documented contract: ignoring the job name and repeatability id")
        with self._create_lock:
            if request_id and not documented:
                earlier = self.store.find_by_request_id(endpoint.name, request_id)
                if earlier is not None:
                    logger.info("job %s: repeated request id, returning the same job", earlier.name)
                    return self._ok(earlier)
            name = (None if documented else spec.name) or str(uuid.uuid4())
            if self.store.get(name) is not None:
                raise ApiError(409, "UserError", f"A job with name '{name}' already exists")
            job = self._new_job(name, endpoint, deployment, spec, request_id)
            try:
                self.store.insert(job)
            except JobExistsError:
                raise ApiError(
                    409, "UserError", f"A job with name '{name}' already exists"
                ) from None
        self.counters.job_created()
        assert self._worker is not None
        self._worker.wake()
        logger.info("job %s: created on %s/%s (%s)", name, endpoint.name, deployment, job.status)
        return self._ok(job, next(self._invoke_codes) if documented else 200)

    def _route_deployment(self, endpoint: EndpointConfig, headers: Any) -> str:
        requested = (headers.get("azureml-model-deployment") or "").strip()
        if requested:
            if requested not in endpoint.deployments:
                raise ApiError(
                    400,
                    "UserError",
                    f"azureml-model-deployment: deployment '{requested}' not found for endpoint "
                    f"'{endpoint.name}' (deployments: {', '.join(endpoint.deployments) or 'none'})",
                )
            return requested
        if endpoint.default_deployment is None:
            raise ApiError(400, "UserError", NO_DEPLOYMENT_MESSAGE)
        return endpoint.default_deployment

    def _new_job(
        self,
        name: str,
        endpoint: EndpointConfig,
        deployment: str,
        spec: Any,
        request_id: str | None,
    ) -> JobRecord:
        now = time.time()
        fault = self.faults.for_new_job(endpoint.name)
        phase = self.config.phase_seconds
        script = tuple((s, phase) for s in DEFAULT_PHASES)
        outcome, message = "Completed", None
        if fault is not None:
            script = fault.script or script
            outcome, message = fault.outcome, fault.message
            logger.info("job %s: job fault applied (outcome %s)", name, outcome)
        return JobRecord(
            name=name,
            endpoint=endpoint.name,
            deployment=deployment,
            spec=spec,
            request_id=request_id,
            created_at=now,
            status=script[0][0],
            phase_index=0,
            phase_started_at=now,
            script=script,
            outcome=outcome,
            outcome_message=message,
        )

    def _h_get_job(self, params: dict[str, str], *_: Any) -> Response:
        self._endpoint(params["endpoint"])
        return self._ok(self._job(params["name"], params["endpoint"]))

    def _h_arm_get_job(self, params: dict[str, str], *_: Any) -> Response:
        job = self._job(params["name"])
        if self.config.documented:
            return Response(200, render_arm_job(job, self.config), {})
        return self._ok(job)

    def _h_arm_list_jobs(
        self, params: dict[str, str], query: dict[str, list[str]], headers: Any, _b: bytes
    ) -> Response:
        path = (
            f"/subscriptions/{params['sub']}/resourceGroups/{params['rg']}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{params['ws']}/jobs"
        )
        return list_jobs(self.store, self.config, query, base_url=self._base(headers), path=path)

    def _h_list_jobs(
        self, params: dict[str, str], query: dict[str, list[str]], *_: Any
    ) -> Response:
        endpoint = self._endpoint(params["endpoint"])
        deployment = query["deployment"][0] if query.get("deployment") else None
        token = (query.get("$skiptoken") or ["0"])[0]
        if not token.isdigit():
            raise ApiError(400, "BadRequest", "$skiptoken: invalid continuation token")
        offset = int(token)
        jobs = self.store.list_endpoint(
            endpoint.name, deployment=deployment, offset=offset, limit=LIST_PAGE_SIZE + 1
        )
        next_link = None
        if len(jobs) > LIST_PAGE_SIZE:
            jobs = jobs[:LIST_PAGE_SIZE]
            dep = f"deployment={deployment}&" if deployment else ""
            next_link = (
                f"{self.base_url}/endpoints/{endpoint.name}/jobs?{dep}"
                f"$skiptoken={offset + LIST_PAGE_SIZE}"
            )
        return Response(
            200, {"value": [render_job(j, self.config) for j in jobs], "nextLink": next_link}, {}
        )

    def _h_cancel_job(self, params: dict[str, str], _q: Any, headers: Any, _b: bytes) -> Response:
        assert self._worker is not None
        return cancel_job(
            self.store,
            self.config,
            params["name"],
            base_url=self._base(headers),
            wake=self._worker.wake,
        )

    # --- admin ----------------------------------------------------------------------------

    def _h_admin_counters(self, *_: Any) -> Response:
        return Response(200, self.counters.snapshot(), {})

    def _h_admin_reset(self, *_: Any) -> Response:
        self.counters.reset()
        self.store.reset_peak()
        return Response(200, self.counters.snapshot(), {})

    def _h_admin_stats(self, *_: Any) -> Response:
        return Response(200, self.store.active_stats(), {})

    def _h_admin_active(self, *_: Any) -> Response:
        return Response(200, self.store.active_jobs(), {})

    def _h_admin_list_faults(self, *_: Any) -> Response:
        return Response(200, {"faults": self.faults.list()}, {})

    def _h_admin_clear_faults(self, *_: Any) -> Response:
        self.faults.clear()
        return Response(200, {"faults": []}, {})

    def _h_admin_add_fault(self, _p: Any, _q: Any, _h: Any, body: bytes) -> Response:
        payload = json_body(body)
        try:
            fault: FaultSpec = parse_fault(payload, key="body")
        except ConfigError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        if fault.endpoint is not None and fault.endpoint not in self.config.endpoints:
            raise ApiError(400, "BadRequest", f"body.endpoint: unknown endpoint {fault.endpoint!r}")
        self.faults.add(fault)
        return Response(200, {"faults": self.faults.list()}, {})

    def _h_admin_job(self, params: dict[str, str], *_: Any) -> Response:
        job = self._job(params["name"])
        return Response(
            200,
            {
                "name": job.name,
                "endpoint": job.endpoint,
                "status": job.status,
                "error_message": job.error_message,  # also under the documented profile
                "request_id": job.request_id,
                "requested_name": job.spec.name,
            },
            {},
        )

    def _h_admin_script(self, params: dict[str, str], _q: Any, _h: Any, body: bytes) -> Response:
        payload = json_body(body)
        if not isinstance(payload, dict):
            raise ApiError(400, "BadRequest", "body: must be an object with 'script'")
        unknown = set(payload) - {"script", "outcome", "message"}
        if unknown:
            raise ApiError(400, "BadRequest", f"body.{sorted(unknown)[0]}: unknown key")
        try:
            script = parse_script(payload.get("script"), "body.script")
            spec = FaultSpec(
                kind="job",
                outcome=payload.get("outcome", "Completed"),
                message=payload.get("message"),
            )
        except ConfigError as exc:
            raise ApiError(
                400, "BadRequest", str(exc) if str(exc).startswith("body") else f"body.{exc}"
            ) from None
        for _ in range(20):
            job = self._job(params["name"])
            if job.terminal:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Job {job.name} is already {job.status}; it cannot be re-scripted",
                )
            updated = replace(
                job,
                script=script,
                phase_index=0,
                status=script[0][0],
                phase_started_at=time.time(),
                outcome=spec.outcome,
                outcome_message=spec.message,
            )
            saved = self.store.update(updated)
            if saved is not None:
                assert self._worker is not None
                self._worker.wake()
                return self._ok(saved)
        raise ApiError(409, "Conflict", "the job is changing state; retry")
