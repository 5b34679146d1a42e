"""CLI: ``python -m devhost start [--app-dir DIR] [--port 7071] ...``."""

import argparse
import logging
import sys
from pathlib import Path

from devhost.errors import DevhostError
from devhost.logs import FieldsFormatter

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost", description="Offline Azure Functions host (Durable)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="serve the app like `func start`")
    start.add_argument(
        "--app-dir",
        type=Path,
        default=Path("."),
        help="folder with function_app.py and host.json (default: .)",
    )
    start.add_argument("--port", type=int, default=7071, help="HTTP port (0 = any free port)")
    start.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    start.add_argument(
        "--state",
        type=Path,
        default=None,
        help="SQLite state file (default <app-dir>/.devhost/state.sqlite)",
    )
    start.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="settings file (default <app-dir>/local.settings.json)",
    )
    start.add_argument(
        "--virtual-clock",
        action="store_true",
        help="virtual time: idle waits jump ahead; POST /admin/devhost/clock/advance?seconds=N",
    )
    start.add_argument(
        "--no-triggers", action="store_true", help="do not run blob and timer triggers"
    )
    start.add_argument("--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(FieldsFormatter("[%(asctime)s] %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    for noisy in (
        "azure.core.pipeline.policies.http_logging_policy",
        "azure.identity",
        "urllib3",
        "azure.storage",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from devhost.host import Host, HostConfig, run_forever

    if not 0 <= args.port <= 65535:
        print("error: --port must be between 0 and 65535", file=sys.stderr)
        return 2
    try:
        host = Host(
            HostConfig(
                app_dir=args.app_dir,
                host=args.host,
                port=args.port,
                state_path=args.state,
                settings_path=args.settings,
                virtual_clock=args.virtual_clock,
                triggers=not args.no_triggers,
            )
        )
    except DevhostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    def ready() -> None:
        print(host.banner(), flush=True)
        print(f"devhost ready on {host.base_url}", flush=True)

    run_forever(host, ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
