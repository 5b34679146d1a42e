"""Command line: ``python -m aml_emulator serve|sample-data``.

``serve`` flags override the config file, which overrides the defaults; the storage
connection string can also come from ``AML_EMULATOR_STORAGE_CONNECTION_STRING`` and the
contract profile from ``AML_EMULATOR_CONTRACT`` (flag > environment > config file). A bad
config or flag prints one line naming the key and exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from aml_emulator._config import (
    CONTRACTS,
    DEFAULT_CONTRACT,
    DEFAULT_STORAGE_CONNECTION_STRING,
    ConfigError,
    EmulatorConfig,
)
from aml_emulator._config import load_config as _load_config
from aml_emulator._sample import (
    SAMPLE_CONTAINER,
    SAMPLE_PREFIX,
    generate_sample_files,
    write_sample_files,
)
from aml_emulator._storage import Storage

logger = logging.getLogger("aml_emulator")

ENV_CONNECTION_STRING = "AML_EMULATOR_STORAGE_CONNECTION_STRING"
ENV_CONTRACT = "AML_EMULATOR_CONTRACT"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aml_emulator", description="Offline Azure ML batch endpoint emulator"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the batch endpoint emulator")
    serve.add_argument("--config", help="JSON config file (see config.example.json)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 5100; 0 = any free port)")
    serve.add_argument("--state", help="SQLite state file (default .emulator/state.sqlite)")
    serve.add_argument(
        "--storage-connection-string",
        help=f"storage account (default: ${ENV_CONNECTION_STRING}, then "
        "UseDevelopmentStorage=true)",
    )
    serve.add_argument(
        "--phase-seconds", type=float, help="duration of each non-terminal job phase (default 2.0)"
    )
    serve.add_argument(
        "--contract",
        choices=CONTRACTS,
        help=f"service contract: {DEFAULT_CONTRACT} (default; only what public sources "
        f"confirm, unconfirmed behaviour at its least helpful) or lenient (client names, "
        f"repeatability ids, errorMessage, ARM-form ids); also ${ENV_CONTRACT}",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sample = sub.add_parser("sample-data", help="write (and upload) the sample heart CSVs")
    sample.add_argument(
        "--out",
        default=".emulator/sample-data",
        help="directory to write into (default .emulator/sample-data)",
    )
    sample.add_argument(
        "--upload",
        action="store_true",
        help=f"also upload to container {SAMPLE_CONTAINER}, prefix {SAMPLE_PREFIX}/",
    )
    sample.add_argument(
        "--storage-connection-string",
        help=f"storage account for --upload (default: ${ENV_CONNECTION_STRING}, "
        "then UseDevelopmentStorage=true)",
    )
    sample.add_argument("--container", default=SAMPLE_CONTAINER)
    sample.add_argument("--prefix", default=SAMPLE_PREFIX)
    return parser


def _connection_string(flag: str | None) -> str | None:
    return flag or os.environ.get(ENV_CONNECTION_STRING) or None


def _serve(args: argparse.Namespace) -> int:
    config = _load_config(args.config) if args.config else EmulatorConfig()
    config = config.with_overrides(
        host=args.host,
        port=args.port,
        state_path=args.state,
        storage_connection_string=_connection_string(args.storage_connection_string),
        phase_seconds=args.phase_seconds,
        contract=args.contract or os.environ.get(ENV_CONTRACT) or None,
    )
    from aml_emulator.server import EmulatorServer

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received signal %d, shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server = EmulatorServer(config).start()
    except OSError as exc:
        print(
            f"aml_emulator: cannot listen on {config.host}:{config.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    except ValueError as exc:  # e.g. a malformed storage connection string
        print(f"aml_emulator: config error: storage_connection_string: {exc}", file=sys.stderr)
        return 2
    print(f"aml_emulator listening on {server.base_url}", flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    logger.info("stopped")
    return 0


def _sample_data(args: argparse.Namespace) -> int:
    files = generate_sample_files()
    for path, sample in zip(write_sample_files(Path(args.out), files), files, strict=True):
        print(f"wrote {path} ({sample.rows} rows)")
    if args.upload:
        conn = _connection_string(args.storage_connection_string)
        storage = Storage(conn or DEFAULT_STORAGE_CONNECTION_STRING, {}, retries=1)
        try:
            prefix = args.prefix.strip("/")
            for sample in files:
                name = f"{prefix}/{sample.name}" if prefix else sample.name
                storage.upload(args.container, name, sample.content)
                print(f"uploaded {args.container}/{name}")
        except Exception as exc:  # storage down: one clear line, no traceback
            print(
                f"aml_emulator: upload failed: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}",
                file=sys.stderr,
            )
            return 1
        finally:
            storage.close()
        print(
            f"input URI: azureml://datastores/workspaceblobstore/paths/{prefix}/"
            if args.container == SAMPLE_CONTAINER
            else f"container: {args.container}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The SDK logs every HTTP call at INFO; keep the emulator's own lines readable.
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            return _serve(args)
        return _sample_data(args)
    except ConfigError as exc:
        print(f"aml_emulator: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
