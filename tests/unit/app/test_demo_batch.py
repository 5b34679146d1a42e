"""The demo's batch progress bar (pure text)."""

from scripts.demo_batch import progress_bar


def test_progress_bar_shows_done_running_and_pending() -> None:
    counts = {"completed": 6, "failed": 1, "running": 4, "pending": 9, "cancelled": 0}
    line = progress_bar(counts, 20, width=20)
    assert line.startswith("[#######++++.........] 7/20 done | running 4 | pending 9")
    assert line.endswith("| failed 1 | cancelled 0")


def test_progress_bar_edges() -> None:
    assert progress_bar({}, 0, width=4).startswith("[....] 0/1 done")
    assert progress_bar({"completed": 20}, 20, width=4).startswith("[####] 20/20 done")
