"""The filter of the management API's instance queries (``GET .../instances?runtimeStatus=...``)."""

from collections.abc import Callable, Iterable
from datetime import datetime

from devhost.history import parse_time
from devhost.store import InstanceRow


def instance_filter(
    runtime_status: Iterable[str] | str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    instance_id_prefix: str | None,
) -> Callable[[InstanceRow], bool]:
    """A predicate true for the rows that match every given filter (None = no filter)."""
    if isinstance(runtime_status, str):
        runtime_status = [s for s in runtime_status.split(",") if s]
    statuses = set(runtime_status) if runtime_status else None

    def wanted(row: InstanceRow) -> bool:
        created = parse_time(row.created)
        return (
            (statuses is None or row.status in statuses)
            and (created_from is None or created >= created_from)
            and (created_to is None or created <= created_to)
            and (not instance_id_prefix or row.instance_id.startswith(instance_id_prefix))
        )

    return wanted
