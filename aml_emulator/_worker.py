"""The job worker: advances every non-terminal job along its phase script and really scores.

State lives in the store, positions are timestamps: a phase ends at
``phase_started_at + seconds`` and the next phase starts exactly then, so after a restart the
worker replays missed transitions and the job continues where it was. Storage work
(checks, scoring, the write) runs on a small thread pool, never in a request thread.

Where the work happens along the script:

- leaving the first phase ("submission"): the job is *prepared*: the input must resolve,
  exist and hold only supported files, and the output path must not exist;
- leaving the last phase with outcome Completed: inputs are scored (files in lexicographic
  order) and the predictions blob is created with ``If-None-Match: *`` (so "already exists"
  is checked again at write time).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from aml_emulator._jobs import JobRecord
from aml_emulator._model import FileScore, ScoringError, prediction_lines, score_csv
from aml_emulator._storage import BlobLocation, Storage, StorageError, strip_query
from aml_emulator._store import JobStore

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = (".csv",)
TICK_SECONDS = 0.02
_MAX_CATCH_UP_STEPS = 64


class JobFailure(Exception):
    """The job fails with this message (as ``properties.errorMessage``)."""


class JobCanceled(Exception):
    """The job was canceled while the worker was busy with it."""


def dataset_failure(uri: str, reason: str) -> JobFailure:
    """The service's message for a missing, empty or unreadable input."""
    return JobFailure(
        f"Dataset initialization failed: Cannot mount Dataset from '{strip_query(uri)}'. "
        "Source of the dataset is either not accessible or doesn't contain any data. "
        f"({reason})"
    )


def _hidden(name: str) -> bool:
    """A marker such as ``_READY`` or ``_SUCCESS`` (or a dot file) in a folder input.

    The emulated deployment's scoring script skips them, as Hadoop/Spark readers do (Apache
    Hadoop ``FileInputFormat.hiddenFileFilter``: names starting with ``_`` or ``.``). What a real
    deployment does with them is up to its scoring script: an assumption of the folder-marker
    mode (README, "Folder-ready trigger").
    """
    return name.rsplit("/", 1)[-1].startswith(("_", "."))


def _extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


class JobWorker:
    """Background thread + pool that moves jobs through their scripts."""

    def __init__(
        self,
        store: JobStore,
        storage: Storage,
        *,
        clock: Callable[[], float] = time.time,
        pool_size: int = 4,
    ) -> None:
        self._store = store
        self._storage = storage
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="aml-job")
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aml-worker", daemon=True)

    def start(self) -> None:
        """Start the loop (non-terminal jobs in the store are resumed)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and wait for running steps to finish."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def wake(self) -> None:
        """Look at the jobs now (a job was created, canceled or re-scripted)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._dispatch_due()
            except Exception:
                logger.exception("job worker loop failed; retrying")
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()

    def _dispatch_due(self) -> None:
        for name in self._store.list_due(self._clock()):
            if self._stopping.is_set():
                return
            with self._busy_lock:
                if name in self._busy:
                    continue
                self._busy.add(name)
            try:
                self._pool.submit(self._advance_safely, name)
            except RuntimeError:  # the pool is shutting down
                with self._busy_lock:
                    self._busy.discard(name)
                return

    @staticmethod
    def _phase_end(job: JobRecord) -> float:
        index = min(job.phase_index, len(job.script) - 1)
        return job.phase_started_at + job.script[index][1]

    def _advance_safely(self, name: str) -> None:
        try:
            for _ in range(_MAX_CATCH_UP_STEPS):
                if self._stopping.is_set() or not self._step(name):
                    break
        except Exception:
            logger.exception("job %s: unexpected error while advancing", name)
        finally:
            with self._busy_lock:
                self._busy.discard(name)
            self._wake.set()

    def _step(self, name: str) -> bool:
        """Take one due transition of job ``name``; return True if another may be due."""
        job = self._store.get(name)
        now = self._clock()
        if job is None or job.terminal or not job.script or now < self._phase_end(job):
            return False
        end = self._phase_end(job)
        try:
            if not job.prepared and job.outcome == "Completed":
                self._prepare(job)
                job = replace(job, prepared=True, start_time=job.start_time or end)
            if job.phase_index + 1 < len(job.script):
                status, _ = job.script[job.phase_index + 1]
                nxt = replace(
                    job, phase_index=job.phase_index + 1, status=status, phase_started_at=end
                )
                if job.start_time is None and status not in ("NotStarted", "Queued"):
                    nxt = replace(nxt, start_time=end)
                return self._save(nxt, job.status)
            return self._save(self._finish(job), job.status)
        except JobFailure as exc:
            return self._save(
                replace(job, status="Failed", error_message=str(exc), end_time=self._clock()),
                job.status,
            )
        except JobCanceled:
            return False

    def _save(self, job: JobRecord, previous: str) -> bool:
        saved = self._store.update(job)
        if saved is None:
            # Someone (cancel, admin script) changed the job meanwhile; re-read next tick.
            return False
        if saved.status != previous:
            if saved.status == "Failed":
                logger.warning(
                    "job %s: %s -> Failed: %s", saved.name, previous, saved.error_message
                )
            else:
                logger.info("job %s: %s -> %s", saved.name, previous, saved.status)
        return not saved.terminal

    def _finish(self, job: JobRecord) -> JobRecord:
        now = self._clock()
        if job.outcome == "Canceled":
            return replace(job, status="Canceled", end_time=now)
        if job.outcome == "Failed":
            message = job.outcome_message or "Job failed (fault injected by aml_emulator)"
            return replace(job, status="Failed", error_message=message, end_time=now)
        scores = self._score(job)
        self._write(job, scores)
        return replace(
            job,
            status="Completed",
            end_time=self._clock(),
            files_scored=len(scores),
            rows_scored=sum(len(s.predictions) for s in scores),
        )

    # --- storage work ---------------------------------------------------------------------

    def _input_files(self, job: JobRecord) -> tuple[str, list[str]]:
        uri = job.spec.input_uri
        try:
            location = self._storage.resolve(uri)
            if job.spec.input_type == "UriFile":
                names = [location.path] if location.path else []
            else:
                names = [n for n in self._storage.list_top_level(location) if not _hidden(n)]
        except StorageError as exc:
            raise dataset_failure(uri, str(exc)) from exc
        if not names:
            raise dataset_failure(uri, "no files found at the path")
        for name in names:
            ext = _extension(name)
            if "." + ext not in SUPPORTED_EXTENSIONS:
                raise JobFailure(
                    f"Error processing input file: '{name.rsplit('/', 1)[-1]}'. "
                    f"File type '{ext}' is not supported"
                )
        return location.container, names

    def _output_location(self, job: JobRecord) -> BlobLocation:
        try:
            return self._storage.resolve(job.output_file_uri)
        except StorageError as exc:
            raise JobFailure(f"UserError: cannot write the output {job.output_uri}: {exc}") from exc

    def _prepare(self, job: JobRecord) -> None:
        container, names = self._input_files(job)
        if job.spec.input_type == "UriFile":
            try:
                data = self._storage.read(container, names[0])
            except StorageError as exc:
                raise dataset_failure(job.spec.input_uri, str(exc)) from exc
            if not data:
                raise dataset_failure(job.spec.input_uri, "the file is missing or empty")
        output = self._output_location(job)
        try:
            exists = self._storage.path_exists(output)
        except StorageError as exc:
            raise JobFailure(f"UserError: cannot write the output {job.output_uri}: {exc}") from exc
        if exists:
            raise JobFailure(f"UserError: the path already exists: {job.output_file_uri}")
        logger.info("job %s: prepared (%d input file(s))", job.name, len(names))

    def _check_not_canceled(self, job: JobRecord) -> None:
        current = self._store.get(job.name)
        if current is None or current.version != job.version:
            raise JobCanceled(job.name)

    def _score(self, job: JobRecord) -> list[FileScore]:
        container, names = self._input_files(job)
        scores: list[FileScore] = []
        for name in names:
            # Stop scoring as soon as the job is canceled or re-scripted.
            self._check_not_canceled(job)
            try:
                data = self._storage.read(container, name)
            except StorageError as exc:
                raise dataset_failure(job.spec.input_uri, str(exc)) from exc
            if data is None:
                raise dataset_failure(job.spec.input_uri, f"'{name}' disappeared")
            if not data and job.spec.input_type == "UriFile":
                raise dataset_failure(job.spec.input_uri, "the file is empty")
            try:
                scores.append(score_csv(name.rsplit("/", 1)[-1], data))
            except ScoringError as exc:
                raise JobFailure(str(exc)) from exc
        return scores

    def _write(self, job: JobRecord, scores: list[FileScore]) -> None:
        output = self._output_location(job)
        self._check_not_canceled(job)
        data = prediction_lines(scores).encode()
        try:
            written = self._storage.create_blob(output, data, job_name=job.name)
        except StorageError as exc:
            raise JobFailure(f"UserError: cannot write the output {job.output_uri}: {exc}") from exc
        if not written:
            raise JobFailure(f"UserError: the path already exists: {job.output_file_uri}")
        logger.info("job %s: wrote %d bytes of predictions", job.name, len(data))
