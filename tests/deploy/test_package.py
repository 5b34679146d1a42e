"""The deployment package: what `func azure functionapp publish` (and `azd deploy`) would send.

Builds the zip from the repository honouring ``.funcignore``, checks that the dev tools stay out,
then indexes ``function_app.py`` from the unpacked zip in a fresh virtual environment that has
only ``requirements.txt`` installed (no access to the repository or the dev venv), as the
Functions Python worker does after a remote build.
"""

import fnmatch
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.infra_text import ROOT

EXCLUDED_DIRS = (
    "devhost",
    "aml_emulator",
    "tests",
    "bench",
    "scripts",
    "docs",
    "infra",
    ".azure",
    "node_modules",
    ".venv",
)
EXPECTED_FUNCTIONS = {
    "batch_endpoint_run",
    "invoke_batch_endpoint",
    "get_batch_job",
    "cancel_batch_job",
    "estimate_job_duration",
    "start_run_http",
    "get_run_http",
    "cancel_run_http",
    "list_runs_http",
    "rerun_run_http",
    "start_run_on_blob",
    "start_run_on_schedule",
    "purge_old_runs",
    "batch_endpoint_batch",
    "list_batch_folder",
    "start_batch_http",
    "get_batch_http",
    "cancel_batch_http",
    "reconcile_jobs",
    "batch_run_reconciliation",
    "notify_delivery",
    "copy_run_output",
    "start_run_notification",
    "deliver_run_notification",
    "plan_run_summary_queue",
    "enqueue_run_summary",
    "endpoint_slots",
    "plan_admission",
    "find_ended_runs",
}


def funcignore_patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """gitignore-style matching for the patterns .funcignore uses: a pattern without '/' matches
    any path component (``tests`` drops ``tests/**``), ``name/`` matches a directory, a pattern
    with an inner '/' is anchored at the root. Negations are not used and not supported."""
    parts = relative.split("/")
    for pattern in patterns:
        assert not pattern.startswith("!"), "negated .funcignore patterns are not modelled"
        anchored = pattern.strip("/")
        if "/" in anchored:
            if fnmatch.fnmatch(relative, anchored) or relative.startswith(anchored + "/"):
                return True
            continue
        components = parts[:-1] if pattern.endswith("/") else parts
        if any(fnmatch.fnmatch(part, anchored) for part in components):
            return True
    return False


def build_package(destination: Path) -> list[str]:
    """Zip the app as Core Tools does (every file not ignored; local.settings.json never)."""
    patterns = funcignore_patterns()
    names: list[str] = []
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, dirnames, filenames in os.walk(ROOT):
            rel_dir = Path(dirpath).relative_to(ROOT).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not ignored(rel_dir + d, patterns) and not (Path(dirpath) / d).is_symlink()
            )
            for filename in sorted(filenames):
                rel = rel_dir + filename
                if ignored(rel, patterns) or filename == "local.settings.json":
                    continue
                zf.write(Path(dirpath) / filename, rel)
                names.append(rel)
    return names


def test_funcignore_matching_reads_the_patterns_like_gitignore():
    patterns = ["tests", "*.pyc", ".git*", "docs/"]
    assert ignored("tests/unit/test_x.py", patterns)
    assert ignored("batch_endpoint/__pycache__/x.pyc", patterns)
    assert ignored(".gitignore", patterns)
    assert ignored("docs/deploy.md", patterns)
    assert not ignored("docs", ["docs/"])  # a file named docs is not a directory
    assert not ignored("batch_runs/settings.py", patterns)


def test_the_package_keeps_dev_tools_out_and_the_app_in(tmp_path):
    names = build_package(tmp_path / "app.zip")
    top = {name.split("/")[0] for name in names}

    assert top.isdisjoint(EXCLUDED_DIRS), sorted(top & set(EXCLUDED_DIRS))
    assert {"function_app.py", "host.json", "requirements.txt"} <= top
    assert {"batch_endpoint", "batch_runs", "triggers", "orchestrators", "activities"} <= top
    assert not [
        n
        for n in names
        if n.endswith((".pyc", ".sqlite"))
        or "/__pycache__/" in n
        or n.startswith((".git", ".hypothesis", ".mypy"))
    ]
    assert "azure.yaml" not in top
    assert "local.settings.json" not in top


@pytest.mark.slow
def test_the_package_imports_and_indexes_on_its_own_in_a_fresh_venv(tmp_path):
    package = tmp_path / "app.zip"
    build_package(package)
    app_dir = tmp_path / "wwwroot"
    with zipfile.ZipFile(package) as zf:
        zf.extractall(app_dir)
    venv = tmp_path / "venv"
    # No pip inside the venv (ensurepip is slow): the dev venv's pip installs into it. The venv
    # sees only its own site-packages (no --system-site-packages), so dev dependencies can't leak.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(app_dir / "requirements.txt"),
        ],
        check=True,
        timeout=240,
        capture_output=True,
    )

    probe = """
import json, sys
sys.path.insert(0, ".")   # the worker puts the app root on sys.path
import function_app
def trigger(f):
    return [b["type"] for b in json.loads(f.get_function_json())["bindings"]
            if b["type"].endswith("Trigger")][0]
functions = {f.get_function_name(): trigger(f) for f in function_app.app.get_functions()}
app_root = __import__("os").path.abspath(".")
foreign = sorted({m.__file__ for m in list(sys.modules.values())
                  if getattr(m, "__file__", None)
                  and not m.__file__.startswith((app_root, sys.prefix, sys.base_prefix))})
print(json.dumps({"functions": functions, "foreign": foreign,
                  "dev_only": [m for m in ("pytest", "hypothesis", "devhost", "aml_emulator")
                               if m in sys.modules]}))
"""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run(
        [str(python), "-E", "-s", "-c", probe],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert set(result["functions"]) == EXPECTED_FUNCTIONS
    assert result["functions"]["start_run_on_blob"] == "blobTrigger"
    assert result["foreign"] == []  # nothing imported from outside the package and its venv
    assert result["dev_only"] == []
    with pytest.raises(subprocess.CalledProcessError):  # and the dev tools are really absent
        subprocess.run(
            [str(python), "-E", "-s", "-c", "import devhost"],
            cwd=app_dir,
            env=env,
            check=True,
            capture_output=True,
            timeout=30,
        )
