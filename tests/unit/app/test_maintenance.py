"""The retention core asks the Durable purge API for finished runs older than the cutoff."""

import asyncio
from datetime import UTC, datetime

from azure.durable_functions.models.PurgeHistoryResult import PurgeHistoryResult

from triggers.maintenance import purge_finished_runs


class FakePurgeClient:
    """Records ``purge_instance_history_by`` calls; answers like the SDK (a result object)."""

    def __init__(self, deleted: int) -> None:
        self.deleted = deleted
        self.calls: list[dict] = []

    async def purge_instance_history_by(self, **kwargs):
        self.calls.append(kwargs)
        return PurgeHistoryResult(instancesDeleted=self.deleted)


def test_finished_runs_older_than_the_retention_are_purged():
    client = FakePurgeClient(deleted=4)
    now = datetime(2026, 11, 30, 3, 30, tzinfo=UTC)

    deleted = asyncio.run(purge_finished_runs(client, retention_days=30, now=now))

    assert deleted == 4
    [call] = client.calls
    assert call["created_time_to"] == datetime(2026, 10, 31, 3, 30, tzinfo=UTC)
    assert call["created_time_from"] < datetime(2000, 1, 1, tzinfo=UTC)  # the SDK requires one
    assert {s.value for s in call["runtime_status"]} == {
        "Completed",
        "Failed",
        "Terminated",
        "Canceled",
    }
