"""``make bench``: every figure of docs/performance.md, one benchmark module per figure.

Each table says the machine's cores and load; ratios are measured in the same run. Sizes are
the issue's (about 8 minutes on an idle 2-core machine); each module also runs on its own
(``python -m bench.<module> --help``).
"""

import sys
import time
from collections.abc import Callable

from bench import (
    bench_client,
    bench_detection,
    bench_engines,
    bench_import,
    bench_predictive,
    bench_replay,
)

FIGURES: list[tuple[str, Callable[[list[str]], None], list[str]]] = [
    # The sweep without the shim (90 s of CPU more) is `python -m bench.bench_replay`.
    (
        "1. replay CPU per poll + POLLS_PER_EXECUTION sweep",
        bench_replay.main,
        ["--shim", "both", "--sweep-shim", "on"],
    ),
    ("2. client CPU floor per GET, product ratio", bench_client.main, []),
    # devhost without the shim: `python -m bench.bench_engines --shim both`.
    ("3. devhost vs durabletask, monitor shape", bench_engines.main, []),
    ("4. cold import", bench_import.main, []),
    ("5. detection latency and calls per job", bench_detection.main, []),
    ("6. predictive vs fixed vs backoff polling", bench_predictive.main, []),
]

if __name__ == "__main__":
    only = set(sys.argv[1:])  # e.g. `python -m bench 1 4`
    started = time.perf_counter()
    for title, run, args in FIGURES:
        if only and title.split(".")[0] not in only:
            continue
        t = time.perf_counter()
        print(f"\n=== {title}", flush=True)
        run(args)
        print(f"    ({time.perf_counter() - t:.0f} s)", flush=True)
    print(f"\nmake bench: {time.perf_counter() - started:.0f} s in all")
