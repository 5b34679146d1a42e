"""Cold import: ``function_app`` vs. the bare ``azure.durable_functions`` it cannot avoid.

The Python worker imports ``function_app`` on every cold start before it runs anything. Each
figure is the median CPU time (``time.process_time``, less disturbed by other load on a shared
machine than wall time) of ``import X`` in 10 fresh interpreters, alternating the variants so
that load hits all alike. The issue's target: ``function_app`` at most the bare
SDK + 0.06 s. The third row is the app's own import time beyond the SDK and ``azure.functions``
(which the worker has loaded anyway); the last, the same with the SDK timestamp shim's
``apply()`` left out (``apply`` replaced by a no-op before the import), shows what the shim adds.

    python -m bench.bench_import [--runs 10]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._common import machine

ROOT = Path(__file__).resolve().parents[1]
#: Bytecode for every module (SDK and app alike) in a cache of its own, so the worktree stays
#: clean and neither side compiles source (pip byte-compiles the SDK; the Functions host writes
#: the app's on its first start). The last row shows the app with no bytecode at all (a
#: read-only package without .pyc files).
PYCACHE = tempfile.mkdtemp(prefix="bench-pycache-")
SDK_ONLY_PYCACHE = tempfile.mkdtemp(prefix="bench-pycache-sdk-")

CODE = """
import time, sys
t = time.process_time()
{imports}
sys.stdout.write(repr(time.process_time() - t))
"""

NO_SHIM = """
try:
    import orchestrators._sdk_timestamps as shim
    shim.apply = lambda: False
except ImportError:  # a checkout from before the shim
    pass
import function_app
"""


def once(imports: str, root: Path = ROOT, *, bytecode: bool = True) -> float:
    """Seconds to import in a fresh interpreter; with ``bytecode`` from a warm .pyc cache."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = PYCACHE if bytecode else SDK_ONLY_PYCACHE
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", CODE.format(imports=imports)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return float(out.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--root", type=Path, default=ROOT, help="the app to import (a checkout)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    variants = {
        "bare azure.durable_functions": "import azure.durable_functions",
        "function_app (product, shim applied)": "import function_app",
        "azure.durable_functions + azure.functions": (
            "import azure.durable_functions, azure.functions"
        ),
        "function_app without the shim": NO_SHIM,
    }
    once("import function_app", root)  # warm the file cache and write the .pyc files
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(  # the SDK's bytecode only: the app's modules stay source
        [sys.executable, "-c", "import azure.durable_functions, azure.functions, requests"],
        cwd=root,
        check=True,
        env={**env, "PYTHONPYCACHEPREFIX": SDK_ONLY_PYCACHE},
    )
    cold = "function_app, no .pyc (compiled from source)"
    times: dict[str, list[float]] = {k: [] for k in [*variants, cold]}
    for _ in range(args.runs):
        for label, imports in variants.items():
            times[label].append(once(imports, root))
        times[cold].append(once("import function_app", root, bytecode=False))
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    bare = med["bare azure.durable_functions"]
    print(f"\nCold import, median of {args.runs} fresh processes, CPU ms ({machine()})")
    for label, value in med.items():
        print(f"  {label:<44} {value:8.1f}  {value - bare:+7.1f} vs bare")
    app = med["function_app (product, shim applied)"]
    verdict = "meets" if app - bare <= 60 else "misses"
    print(f"  target function_app <= bare + 60 ms: {verdict} ({app - bare:+.1f} ms)")


if __name__ == "__main__":
    main()
