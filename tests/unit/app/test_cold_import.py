"""Importing the app (what the Functions host does at indexing time) loads no HTTP client stack.

The Python worker imports ``function_app`` on every cold start before it can run anything
(azure-functions-python-worker ``loader.py`` ``index_function_app``), so whatever the import
loads is paid on each cold start. ``requests``, ``azure.core``, ``azure.identity`` and the
blob SDK are loaded on first use instead (docs/performance.md, cold import).
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("requests", "urllib3", "azure.core", "azure.identity", "azure.storage.blob")


def _loaded_after_import(module: str) -> list[str]:
    code = (
        "import json, sys\n"
        f"import {module}\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_importing_the_app_loads_no_http_client_stack() -> None:
    assert _loaded_after_import("function_app") == []


def test_the_clients_still_load_their_stack_on_first_use() -> None:
    """The check above could pass by accident if nothing could load them: first use does."""
    code = (
        "import json, sys\n"
        "from batch_runs.clients import get_session\n"
        "from batch_endpoint import BatchEndpointClient, WorkspaceJobsClient\n"
        "get_session()\n"
        f"print(json.dumps([m for m in {list(HEAVY[:2])!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == ["requests", "urllib3"]
