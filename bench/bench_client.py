"""Cost of a status check: the client's CPU floor per GET, and the product's poll against it.

House rule: one Session per worker process, reused by every call (keep-alive, one TLS handshake
per host in Azure). This measures ``BatchEndpointClient.get_job`` against the real emulator
over HTTP on loopback with the shared session (the product's way) and with a fresh Session per
call (what per-call clients do), plus bare ``requests.get``. Loopback has no TLS, so the ratio
here is a *lower bound* of the saving against a real ``https`` endpoint.

The physical floor of a poll is the client's own CPU for one status GET: the calling thread's
CPU (``time.thread_time``; the emulator serves from other threads) per ``get_job`` over the
shared session. The second table puts the product's CPU per poll (``bench.bench_replay``'s
engine figure, a 300-poll run, with and without the SDK timestamp shim) next to it, measured in
the same process. The issue's target: at most 6x the floor.

    python -m bench.bench_client [--calls 300] [--polls 300]
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from aml_emulator._config import EmulatorConfig
from aml_emulator.server import EmulatorServer
from batch_endpoint import BatchEndpointClient, StaticTokenProvider
from batch_runs import state as run_state
from batch_runs.clients import get_session
from bench._common import machine, sdk_shim, shim_label
from bench.bench_replay import engine_ms_per_poll


def per_call(calls: int, fn: Callable[[], None]) -> tuple[float, float]:
    """(wall ms, calling-thread CPU ms) per call, medians of 5 rounds of ``calls`` calls."""
    walls, cpus = [], []
    for _ in range(5):
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(calls):
            fn()
        cpus.append((time.thread_time() - cpu) * 1000 / calls)
        walls.append((time.perf_counter() - wall) * 1000 / calls)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--polls", type=int, default=300)
    args = parser.parse_args(argv)

    state = Path(tempfile.mkdtemp(prefix="bench-client-")) / "state.sqlite"
    # No storage is needed to read a job; the job fails in the background, which is fine here.
    config = EmulatorConfig(
        port=0,
        state_path=str(state),
        phase_seconds=3600.0,
        storage_connection_string="UseDevelopmentStorage=true",
    )
    with EmulatorServer(config) as server:
        endpoint = f"{server.base_url}/endpoints/heart-classifier/jobs"
        token = StaticTokenProvider("local-dev")
        shared = BatchEndpointClient(
            endpoint, token, session=get_session(), allowed_hosts=["127.0.0.1"], auth_mode="none"
        )
        job = requests.post(
            endpoint,
            headers={"Authorization": "Bearer local-dev"},
            timeout=10,
            json={
                "properties": {
                    "InputData": {
                        "in": {
                            "JobInputType": "UriFolder",
                            "Uri": "azureml://datastores/workspaceblobstore/paths/x/",
                        }
                    }
                }
            },
        ).json()["name"]

        def with_shared() -> None:
            shared.get_job(job)

        def with_new_session() -> None:
            with requests.Session() as session:
                BatchEndpointClient(
                    endpoint, token, session=session, allowed_hosts=["127.0.0.1"], auth_mode="none"
                ).get_job(job)

        def bare_get() -> None:
            requests.get(
                f"{endpoint}/{job}", headers={"Authorization": "Bearer local-dev"}, timeout=10
            ).json()

        for _ in range(50):
            with_shared()  # warm up
        rows = [
            ("shared Session (product)", *per_call(args.calls, with_shared)),
            ("new Session per call", *per_call(args.calls, with_new_session)),
            ("bare requests.get per call", *per_call(args.calls, bare_get)),
        ]
    floor = rows[0][2]
    print(f"\nget_job against the emulator over loopback, {args.calls} calls x 5 ({machine()})")
    print(f"  {'variant':<30} {'wall ms':>8} {'ratio':>6} {'client CPU ms':>14} {'ratio':>6}")
    for label, wall, cpu in rows:
        print(
            f"  {label:<30} {wall:8.3f} x{wall / rows[0][1]:5.2f} {cpu:14.3f} x{cpu / floor:5.2f}"
        )
    print(
        f"\nProduct CPU per poll vs. the floor ({floor:.3f} ms client CPU per GET), "
        f"{args.polls}-poll run, POLLS_PER_EXECUTION={run_state.POLLS_PER_EXECUTION}"
    )
    for shim in (False, True):
        with sdk_shim(shim):
            product = engine_ms_per_poll(args.polls, run_state.POLLS_PER_EXECUTION)
        verdict = "meets" if product <= 6 * floor else "misses"
        print(
            f"  {shim_label(shim):<14} {product:7.2f} ms/poll  x{product / floor:5.1f} the floor "
            f"({verdict} the 6x target)"
        )


if __name__ == "__main__":
    main()
