"""copy_output's waiting: a pending copy is polled to its end, aborted past the bound; storage
errors split into permanent (the run fails) and transient (the activity retries).

Azurite completes copies inside its account at once, so the e2e test (tests/e2e/test_handoff.py)
never sees ``pending``; these paths use a stand-in BlobClient."""

from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

from batch_runs import handoff
from batch_runs.handoff import BlobTarget, StorageAccess, TransientCopyError, copy_output

SRC = BlobTarget("src01", "https://src01.blob.core.windows.net", "aml", "out/p.csv")
DEST = BlobTarget("dst01", "https://dst01.blob.core.windows.net", "handoff", "p.csv")


class FakeBlob:
    def __init__(self, statuses: list[str], start_error: Exception | None = None) -> None:
        self.statuses = statuses
        self.start_error = start_error
        self.aborted: list[str] = []
        self.sources: list[str] = []

    def __call__(self, *args: Any, **kwargs: Any) -> "FakeBlob":
        return self

    def start_copy_from_url(self, url: str) -> dict[str, str]:
        self.sources.append(url)
        if self.start_error is not None:
            raise self.start_error
        return {"copy_status": self._next(), "copy_id": "copy-1"}

    def _next(self) -> str:
        """The next status; the last one repeats."""
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def get_blob_properties(self) -> Any:
        status = self._next()
        copy = SimpleNamespace(status=status, status_description="500 InternalError sig=abc")
        return SimpleNamespace(copy=copy, size=1234)

    def abort_copy(self, copy_id: str) -> None:
        self.aborted.append(copy_id)

    def close(self) -> None:
        pass


class Access(StorageAccess):
    def __init__(self) -> None:
        super().__init__(credential=None, account_key=None)

    def source_sas(self, source: BlobTarget, now: Any) -> str:
        return "sv=2025&sp=r&sig=SECRET"


def _run(monkeypatch: pytest.MonkeyPatch, fake: FakeBlob, **kw: Any):
    monkeypatch.setattr("azure.storage.blob.BlobClient", fake)
    clock = iter(range(0, 10_000, 2))
    return copy_output(
        SRC, DEST, Access(), sleep=lambda s: None, clock=lambda: float(next(clock)), **kw
    )


def test_a_pending_copy_is_polled_until_it_succeeds(monkeypatch):
    fake = FakeBlob(["pending", "pending", "success", "success"])
    result = _run(monkeypatch, fake)
    assert result.ok
    assert result.size == 1234
    assert fake.sources == [f"{SRC.url}?sv=2025&sp=r&sig=SECRET"]
    assert fake.aborted == []


def test_a_copy_past_the_bound_is_aborted_and_fails(monkeypatch):
    fake = FakeBlob(["pending"])
    result = _run(monkeypatch, fake, timeout=10)
    assert not result.ok
    assert "did not finish within 10s" in (result.error or "")
    assert fake.aborted == ["copy-1"]


def test_a_failed_copy_is_permanent_and_shows_no_sas(monkeypatch):
    result = _run(monkeypatch, FakeBlob(["pending", "failed"]))
    assert not result.ok
    assert "ended failed" in (result.error or "")
    assert "SECRET" not in (result.error or "")
    assert "sig=abc" not in (result.error or "")


def test_refusals_are_permanent_and_outages_transient(monkeypatch):
    refused = HttpResponseError(message="This request is not authorized")
    refused.status_code = 403
    result = _run(monkeypatch, FakeBlob(["success"], start_error=refused))
    assert not result.ok
    assert "403" in (result.error or "")
    busy = HttpResponseError(message="Server busy")
    busy.status_code = 503
    with pytest.raises(TransientCopyError):
        _run(monkeypatch, FakeBlob(["success"], start_error=busy))
    with pytest.raises(TransientCopyError):
        _run(monkeypatch, FakeBlob(["success"], start_error=ServiceRequestError("no route")))


def test_offline_access_uses_the_connection_strings_key() -> None:
    settings = SimpleNamespace(auth_mode="none", storage_connection="UseDevelopmentStorage=true")
    access = handoff.storage_access(settings)
    assert access.account_key  # Azurite's published development key
    with pytest.raises(ValueError, match="AzureWebJobsStorage"):
        handoff.storage_access(SimpleNamespace(auth_mode="none", storage_connection=None))
