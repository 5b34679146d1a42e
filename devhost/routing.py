"""HTTP route templates as the Functions host (ASP.NET Core routing) understands them.

Supported: literal segments (case-insensitive), ``{name}``, optional ``{name?}`` (trailing),
constraints ``{id:int}``, ``{x:alpha}``, ``{x:guid}``, ``{x:bool}``, ``{x:long}``, ``{x:double}``
(others are parsed and accepted without checking), catch-all ``{*rest}``.
"""

import re
from dataclasses import dataclass

__all__ = ["RouteTemplate", "compile_route"]

_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "double": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
}

_PARAM = re.compile(r"^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([^}?=]+))?(\?)?\}$")


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """A compiled route template."""

    template: str
    pattern: re.Pattern[str]
    params: tuple[str, ...]

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters if ``path`` (no leading slash) matches, else ``None``."""
        found = self.pattern.fullmatch(path.strip("/"))
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}


def compile_route(template: str) -> RouteTemplate:
    """Compile a route template.

    Raises:
        ValueError: a parameter segment is malformed (names the template).
    """
    segments = [s for s in template.strip("/").split("/") if s != ""]
    regex = ""
    params: list[str] = []
    for index, segment in enumerate(segments):
        sep = "/" if index else ""
        if "{" not in segment:
            regex += sep + "(?i:" + re.escape(segment) + ")"
            continue
        m = _PARAM.match(segment)
        if m is None:
            raise ValueError(f"route {template!r}: unsupported segment {segment!r}")
        catch_all, name, constraint, optional = m.groups()
        params.append(name)
        constraint_name = (constraint or "").split("(")[0].lower()
        body = ".*" if catch_all else _CONSTRAINTS.get(constraint_name, r"[^/]+")
        group = f"(?P<{name}>{body})"
        if optional or catch_all:
            regex += f"(?:{sep}{group})?"
        else:
            regex += sep + group
    return RouteTemplate(template, re.compile(regex), tuple(params))
