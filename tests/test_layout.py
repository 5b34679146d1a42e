"""House rules that are about the code's shape: module size (issue 9: no source module over 600
lines; complexity is ruff's C90 and the import rules are lint-imports' contracts)."""

import subprocess
from pathlib import Path

MAX_MODULE_LINES = 600
ROOT = Path(__file__).resolve().parent.parent


def _source_modules() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if not name.startswith("tests/")]


def test_no_source_module_is_over_600_lines() -> None:
    modules = _source_modules()
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if path.exists()
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }

    assert len(modules) > 40  # the listing found the project's modules
    assert too_long == {}
