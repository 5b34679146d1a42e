"""A hand-written fake of the Durable client's network calls (a narrow unit seam).

It subclasses the real ``DurableOrchestrationClient`` so that everything that is not network
I/O (``create_check_status_response``, URL building, status objects) is the SDK's own code.
End-to-end tests use the real client against devhost instead.
"""

import json
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

BASE = "http://127.0.0.1:7071/runtime/webhooks/durabletask"
_Q = "taskHub=hub&connection=Storage&code=systemkey"
BINDING = json.dumps(
    {
        "taskHubName": "hub",
        "creationUrls": {
            "createNewInstancePostUri": (
                f"{BASE}/orchestrators/{{functionName}}[/{{instanceId}}]?{_Q}"
            ),
            "createAndWaitOnNewInstancePostUri": (
                f"{BASE}/orchestrators/{{functionName}}[/{{instanceId}}]"
                f"?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{_Q}"
            ),
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{BASE}/instances/INSTANCEID?{_Q}",
            "sendEventPostUri": f"{BASE}/instances/INSTANCEID/raiseEvent/{{eventName}}?{_Q}",
            "terminatePostUri": f"{BASE}/instances/INSTANCEID/terminate?reason={{text}}&{_Q}",
            "rewindPostUri": f"{BASE}/instances/INSTANCEID/rewind?reason={{text}}&{_Q}",
            "purgeHistoryDeleteUri": f"{BASE}/instances/INSTANCEID?{_Q}",
            "restartPostUri": f"{BASE}/instances/INSTANCEID/restart?{_Q}",
            "suspendPostUri": f"{BASE}/instances/INSTANCEID/suspend?reason={{text}}&{_Q}",
            "resumePostUri": f"{BASE}/instances/INSTANCEID/resume?reason={{text}}&{_Q}",
        },
        "baseUrl": BASE,
        "requiredQueryStringParameters": _Q,
        "rpcBaseUrl": f"{BASE}/",
    }
)


class FakeDurableClient(df.DurableOrchestrationClient):  # type: ignore[misc]
    """Keeps instances in a dict; records starts and raised events."""

    def __init__(self) -> None:
        super().__init__(BINDING)
        self.instances: dict[str, dict[str, Any]] = {}
        self.started: list[tuple[str, str, Any]] = []
        self.events: list[tuple[str, str, Any]] = []
        self.fail_next_start = False

    def add(
        self,
        instance_id: str,
        *,
        name: str = "batch_endpoint_run",
        runtime_status: str = "Running",
        custom_status: Any = None,
        output: Any = None,
        input_: Any = None,
    ) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.instances[instance_id] = {
            "name": name,
            "instanceId": instance_id,
            "runtimeStatus": runtime_status,
            "customStatus": custom_status,
            "output": output,
            "input": input_,
            "createdTime": now,
            "lastUpdatedTime": now,
        }

    async def start_new(
        self, orchestration_function_name, instance_id=None, client_input=None, version=None
    ):
        if self.fail_next_start:
            self.fail_next_start = False
            raise Exception("An Orchestration instance with the specified ID already exists")
        self.started.append((orchestration_function_name, instance_id, client_input))
        self.add(
            instance_id,
            name=orchestration_function_name,
            runtime_status="Pending",
            input_=client_input,
        )
        return instance_id

    async def get_status(
        self, instance_id, show_history=False, show_history_output=False, show_input=False
    ):
        data = self.instances.get(instance_id)
        return DurableOrchestrationStatus.from_json(data) if data else DurableOrchestrationStatus()

    async def get_status_by(
        self,
        created_time_from=None,
        created_time_to=None,
        runtime_status=None,
        instance_id_prefix=None,
    ):
        wanted = {getattr(s, "value", s) for s in runtime_status or []}
        return [
            DurableOrchestrationStatus.from_json(d)
            for iid, d in self.instances.items()
            if (not instance_id_prefix or iid.startswith(instance_id_prefix))
            and (not wanted or d["runtimeStatus"] in wanted)
        ]

    async def raise_event(
        self, instance_id, event_name, event_data=None, task_hub_name=None, connection_name=None
    ):
        self.events.append((instance_id, event_name, event_data))
