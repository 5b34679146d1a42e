"""Reading the azd template as text: no Bicep compiler exists offline, so these helpers read the
few shapes the checks need (object blocks, role assignments, parameter defaults) and fail loudly
when a shape is not found, rather than silently checking nothing."""

import functools
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DOCS = ROOT / "docs" / "deploy.md"

_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def bicep_files() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
        for p in sorted(INFRA.rglob("*.bicep"))
    }


def object_block(text: str, opener: str) -> str:
    """The text of the ``{ ... }`` that follows the first match of regex ``opener``."""
    match = re.search(opener, text)
    if match is None:
        raise AssertionError(f"no {opener!r} in the template")
    start = text.index("{", match.end() - 1)
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    raise AssertionError(f"unbalanced braces after {opener!r}")


def object_keys(block: str) -> dict[str, str]:
    """Top-level ``KEY: value`` lines of an object block (values as written, one line)."""
    keys: dict[str, str] = {}
    depth = 0
    for line in block.splitlines():
        stripped = re.sub(r"\s//\s.*$", "", line).strip()
        if depth == 0:
            m = re.match(r"^'?([A-Za-z_][A-Za-z0-9_.\-]*)'?\s*:\s*(.*)$", stripped)
            if m:
                keys[m.group(1)] = m.group(2).strip()
        depth += line.count("{") - line.count("}")
    return keys


def app_settings() -> dict[str, str]:
    """Every app setting the template sets: name -> Bicep expression."""
    main, app = read("infra/main.bicep"), read("infra/app.bicep")
    settings: dict[str, str] = {}
    settings.update(object_keys(object_block(main, r"\n\s+settings:\s*\{")))
    settings.update(object_keys(object_block(main, r"servicePrincipalSettings:[^{]*\{")))
    settings.update(object_keys(object_block(app, r"var hostSettings\s*=\s*\{")))
    settings.update(object_keys(object_block(app, r"var schedulerSettings\s*=[^{]*\{")))
    return settings


def param_defaults(text: str) -> dict[str, str]:
    """``param name type = 'default'`` string defaults of one Bicep file."""
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"^param\s+(\w+)\s+string\s*=\s*'([^']*)'", text, re.M)
    }


def role_assignments() -> list[tuple[str, str, str]]:
    """``(file, resource symbol, role definition id)`` for every role assignment in infra/."""
    found: list[tuple[str, str, str]] = []
    for name, text in bicep_files().items():
        guids = dict(re.findall(rf"^var\s+(\w+)\s*=\s*'({_GUID})'", text, re.M))
        for m in re.finditer(
            r"^resource\s+(\w+)\s+'Microsoft\.Authorization/roleAssignments@"
            r"[\w-]+'",
            text,
            re.M,
        ):
            body = object_block(text[m.start() :], r"=\s*(?:if\s*\([^\n]*\)\s*)?\{")
            ref = re.search(
                r"roleDefinitionId:\s*subscriptionResourceId\("
                r"'Microsoft\.Authorization/roleDefinitions',\s*(\w+|'[^']+')\)",
                body,
            )
            if ref is None:
                raise AssertionError(f"{name}: {m.group(1)} has no built-in roleDefinitionId")
            token = ref.group(1).strip("'")
            role = guids.get(token, token)
            if not re.fullmatch(_GUID, role):
                raise AssertionError(f"{name}: {m.group(1)} role {token!r} is not a literal id")
            found.append((name, m.group(1), role))
    return found


def documented_roles() -> dict[str, str]:
    """Rows of the roles table in docs/deploy.md: role name -> built-in id."""
    rows = re.findall(
        rf"^\|\s*([^|]+?)\s*\|\s*`({_GUID})`\s*\|", DOCS.read_text(encoding="utf-8"), re.M
    )
    return dict(rows)


class RecordingEnviron(Mapping[str, str]):
    """An environment that records every name looked up in it."""

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        self._data = dict(data or {})
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


_INDEX = """
import json, function_app
print(json.dumps({f.get_function_name(): json.loads(f.get_function_json())
                  for f in function_app.app.get_functions()}))
"""


@functools.cache
def indexed_functions() -> dict[str, dict[str, Any]]:
    """``function_app`` indexed in a child process, as the worker does: name -> function JSON.

    (The SDK refuses a second ``get_functions()`` in one process, and the unit tests own the
    first one.)
    """
    out = subprocess.run(
        [sys.executable, "-c", _INDEX],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    functions: dict[str, dict[str, Any]] = json.loads(out)
    return functions
