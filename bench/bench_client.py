"""Cost of a status check: one shared ``requests.Session`` vs. a new connection per call.

House rule: one Session per worker process, reused by every call (keep-alive, one TLS handshake
per host in Azure). This measures ``BatchEndpointClient.get_job`` against the real emulator
over HTTP on loopback with the shared session (the product's way) and with a fresh Session per
call (what per-call clients do), plus bare ``requests.get``. Loopback has no TLS, so the ratio
here is a *lower bound* of the saving against a real ``https`` endpoint.

    python -m bench.bench_client [--calls 300]
"""

import argparse
import tempfile
from pathlib import Path

import requests

from aml_emulator._config import EmulatorConfig
from aml_emulator.server import EmulatorServer
from batch_endpoint import BatchEndpointClient, StaticTokenProvider
from batch_runs.clients import get_session
from bench._common import best_of, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
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
            for _ in range(args.calls):
                shared.get_job(job)

        def with_new_session() -> None:
            for _ in range(args.calls):
                with requests.Session() as session:
                    BatchEndpointClient(
                        endpoint,
                        token,
                        session=session,
                        allowed_hosts=["127.0.0.1"],
                        auth_mode="none",
                    ).get_job(job)

        def bare_get() -> None:
            for _ in range(args.calls):
                requests.get(
                    f"{endpoint}/{job}", headers={"Authorization": "Bearer local-dev"}, timeout=10
                ).json()

        with_shared()  # warm up
        rows = [
            ("shared Session (product)", best_of(3, with_shared) * 1000 / args.calls, "ms/call"),
            ("new Session per call", best_of(3, with_new_session) * 1000 / args.calls, "ms/call"),
            ("bare requests.get per call", best_of(3, bare_get) * 1000 / args.calls, "ms/call"),
        ]
    table(
        f"get_job against the emulator, {args.calls} calls, median of 3 (lower is better)",
        rows,
        baseline="shared Session (product)",
    )


if __name__ == "__main__":
    main()
