"""devhost's indexing against the real Python worker's loader and ``Registry``.

The worker's pure-Python loader ships as ``azure-functions-runtime`` (the library the Python 3.13+
worker loads; its ``loader.index_function_app`` and ``functions.Registry`` are the same code as
azure-functions-python-worker's ``azure_functions_worker/loader.py`` and ``functions.py``). The
wheel declares ``Requires-Python >=3.13`` only because the worker process is 3.13; these two
modules run on 3.11. pip cannot install it here, so this test fetches the pinned wheel
(``pip download``, version and SHA-256 below) into pytest's cache (``.pytest_cache``, or a temp
folder without the cache plugin), checks its hash and unpacks it for the session; set
``AZURE_FUNCTIONS_RUNTIME_DIR`` to an unpacked copy to run offline. With neither, the tests are
skipped, naming why.

The worker's ``protos`` (the host's gRPC messages, which the worker passes to ``Registry``) are
not in the wheel; ``Registry`` reads only the ``BindingInfo`` enum numbers from them, given here
as ``FunctionRpc.proto`` defines them (Azure/azure-functions-language-worker-protobuf
``src/proto/FunctionRpc.proto``, ``message BindingInfo``: ``Direction { in = 0; out = 1;
inout = 2; }``, ``DataType { undefined = 0; ... }``).
"""

import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from devhost.app_loader import load_app
from devhost.errors import AppLoadError
from tests.support import REPO_ROOT
from tests.unit.app.test_indexing import EXPECTED

WORKER_VERSION = "1.3.0"
WORKER_WHEEL = f"azure_functions_runtime-{WORKER_VERSION}-py3-none-any.whl"
WORKER_SHA256 = "5045cf1e1a9a33ff262043eb52cf976834d2f2b6c67c20da61588fe7dc2fcf64"

PROTOS = SimpleNamespace(
    BindingInfo=SimpleNamespace(**{"in": 0, "out": 1, "inout": 2}, undefined=0)
)


def _wheel(cache_dir: Path) -> Path:
    """The pinned wheel, from the cache or downloaded; its SHA-256 is checked on every use."""
    wheel = cache_dir / WORKER_WHEEL
    if not wheel.exists():
        download = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.13",
            "--dest",
            str(cache_dir),
            f"azure-functions-runtime=={WORKER_VERSION}",
        ]
        done = subprocess.run(download, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0 or not wheel.exists():
            pytest.skip(
                f"azure-functions-runtime=={WORKER_VERSION} could not be downloaded "
                f"(offline?) and AZURE_FUNCTIONS_RUNTIME_DIR is not set: {done.stderr[-300:]}"
            )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert digest == WORKER_SHA256, f"{wheel} has SHA-256 {digest}, not the pinned one"
    return wheel


def _cache_dir(request: pytest.FixtureRequest) -> Path:
    """pytest's cache (``.pytest_cache``), or a temp folder when the cache plugin is off
    (``make test`` runs ``-p no:cacheprovider``)."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("azure-functions-runtime"))
    folder = Path(tempfile.gettempdir()) / "devhost-azure-functions-runtime"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def worker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """The worker's ``loader`` and ``Registry`` modules, imported from the unpacked wheel."""
    given = os.environ.get("AZURE_FUNCTIONS_RUNTIME_DIR")
    if given:
        root = Path(given)
    else:
        root = tmp_path_factory.mktemp("azure_functions_runtime")
        with zipfile.ZipFile(_wheel(_cache_dir(request))) as archive:
            archive.extractall(root)
    sys.path.insert(0, str(root))
    try:
        loader = importlib.import_module("azure_functions_runtime.loader")
        functions = importlib.import_module("azure_functions_runtime.functions")
        meta = importlib.import_module("azure_functions_runtime.bindings.meta")
        meta.load_binding_registry()  # what the worker does on its init request
        yield SimpleNamespace(loader=loader, functions=functions)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("azure_functions_runtime")]:
            del sys.modules[name]


def _worker_index(worker: SimpleNamespace, app_dir: Path) -> dict[str, Any]:
    """Index ``app_dir/function_app.py`` as the worker's ``FunctionsMetadataRequest`` does
    (``index_function_app`` then ``Registry.add_indexed_function`` for each function)."""
    sys.path.insert(0, str(app_dir))
    saved: ModuleType | None = sys.modules.pop("function_app", None)
    try:
        indexed = worker.loader.index_function_app(str(app_dir / "function_app.py"))
        registry = worker.functions.Registry()
        result: dict[str, Any] = {}
        for function in indexed:
            info = registry.add_indexed_function(function=function, protos=PROTOS)
            trigger = function.get_trigger()
            params = {**info.input_types, **info.output_types}
            result[info.name] = (str(trigger.type), tuple(sorted(params)))
        return result
    finally:
        sys.path.remove(str(app_dir))
        sys.modules.pop("function_app", None)
        if saved is not None:
            sys.modules["function_app"] = saved


def _app(tmp_path: Path, name: str, source: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "function_app.py").write_text(source)
    return folder


def test_devhost_indexes_the_product_app_as_the_worker_does(worker: SimpleNamespace) -> None:
    """Same functions, trigger types and bound parameters as the worker's ``Registry``."""
    expected = _worker_index(worker, REPO_ROOT)
    index = load_app(REPO_ROOT)

    ours = {name: (trigger, index.parameters[name]) for name, trigger in index.functions.items()}

    assert set(expected) == set(EXPECTED)  # every function of the app, no more
    assert ours == expected


TWO_APPS = """
import azure.functions as func
app = func.FunctionApp()
other = func.FunctionApp()

@app.route(route="x")
def x(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("x")
"""

UNBOUND = """
import azure.functions as func
app = func.FunctionApp()

@app.route(route="x")
def x(req: func.HttpRequest, extra: str) -> func.HttpResponse:
    return func.HttpResponse(extra)
"""

CONTEXT_IS_FINE = """
import azure.functions as func
app = func.FunctionApp()

@app.route(route="x")
def x(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse("x")
"""


def test_two_app_objects_or_an_unbound_parameter_fail_indexing_in_both(
    worker: SimpleNamespace, tmp_path: Path
) -> None:
    """The worker raises ``ValueError: More than one ... function app instances`` (``loader.py``
    ``index_function_app``) and ``FunctionLoadError`` for a parameter without a binding
    (``functions.py`` ``validate_function_params``); devhost refuses both at load, and both
    accept an unbound ``context`` (``is_context_required``)."""
    two = _app(tmp_path, "two", TWO_APPS)
    unbound = _app(tmp_path, "unbound", UNBOUND)
    fine = _app(tmp_path, "fine", CONTEXT_IS_FINE)

    with pytest.raises(ValueError, match="More than one FunctionApp"):
        _worker_index(worker, two)
    with pytest.raises(AppLoadError, match="More than one FunctionApp"):
        load_app(two)
    with pytest.raises(worker.functions.FunctionLoadError, match="extra"):
        _worker_index(worker, unbound)
    with pytest.raises(AppLoadError, match=r"function 'x'.*'extra'"):
        load_app(unbound)
    assert _worker_index(worker, fine) == {"x": ("httpTrigger", ("req",))}
    assert load_app(fine).parameters == {"x": ("req",)}
