"""Read the dashboards in dashboards/ and pull out every query they run.

A Prometheus query is either a panel target (``expr``) on a Prometheus
datasource or a Prometheus query variable (``label_values(...)``). Grafana
fills in its built-in and template variables before sending a query; so does
:func:`substitute`, with values the caller picks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO_ROOT / "dashboards"


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def datasource_type(dashboard: Mapping[str, Any], ref: Any) -> str | None:
    """The plugin type of a datasource reference, resolving datasource variables."""
    if not isinstance(ref, Mapping):
        return None
    if ref.get("type"):
        return str(ref["type"])
    uid = str(ref.get("uid", ""))
    match = re.fullmatch(r"\$\{?(\w+)\}?", uid)
    if match:
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable["name"] == match.group(1) and variable["type"] == "datasource":
                return str(variable["query"])
    return None


@dataclass(frozen=True)
class PromQuery:
    """One PromQL expression of a dashboard, where it comes from, what it should return."""

    dashboard: str
    where: str  # "panel 'title' target A" or "variable 'name'"
    expr: str
    instant: bool
    legend: str = ""
    fmt: str = "time_series"
    is_variable: bool = False
    variable_label: str = ""  # label_values(..., LABEL)

    @property
    def id(self) -> str:
        return f"{self.dashboard}: {self.where}"

    def expected_labels(self) -> set[str]:
        """Labels every returned series must carry.

        Those the legend shows ({{label}}) and, for table results, those the
        aggregation groups by (``le`` is consumed by histogram_quantile).
        """
        labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", self.legend))
        if self.fmt == "table" or not labels:
            for group in re.findall(r"\bby\s*\(([^)]*)\)", self.expr):
                labels |= {name.strip() for name in group.split(",") if name.strip()}
        labels.discard("le")
        return labels


LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$"
)


def prometheus_queries(path: Path) -> list[PromQuery]:
    dashboard = load(path)
    name = path.name
    queries: list[PromQuery] = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        if datasource_type(dashboard, variable.get("datasource")) != "prometheus":
            continue
        raw = variable.get("query")
        text = raw.get("query") if isinstance(raw, Mapping) else raw
        match = LABEL_VALUES.match(str(text))
        if match is None:
            raise AssertionError(
                f"{name}: variable {variable['name']!r}: unsupported query {text!r}"
            )
        queries.append(
            PromQuery(
                dashboard=name,
                where=f"variable {variable['name']!r}",
                expr=match.group("selector") or "",
                instant=True,
                is_variable=True,
                variable_label=match.group("label"),
            )
        )
    for panel in iter_panels(dashboard):
        panel_ds = panel.get("datasource")
        for target in panel.get("targets", []):
            ds = datasource_type(dashboard, target.get("datasource", panel_ds))
            if ds != "prometheus":
                continue
            queries.append(
                PromQuery(
                    dashboard=name,
                    where=f"panel {panel['title']!r} target {target['refId']}",
                    expr=target["expr"],
                    instant=bool(target.get("instant")) and not target.get("range", False),
                    legend=str(target.get("legendFormat", "")),
                    fmt=str(target.get("format", "time_series")),
                )
            )
    return queries


def tempo_targets(path: Path) -> list[tuple[str, dict[str, Any]]]:
    dashboard = load(path)
    found = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            ds = datasource_type(dashboard, target.get("datasource", panel.get("datasource")))
            if ds == "tempo":
                found.append(
                    (f"{path.name}: panel {panel['title']!r} target {target['refId']}", target)
                )
    return found


_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace ``$name``, ``${name}`` and ``${name:format}`` as Grafana would.

    ``values`` maps variable names (built-ins included: ``__rate_interval``,
    ``__range``, ``__interval``) to the text put in their place. An unknown
    variable is an error: a query must not reach Prometheus with a ``$`` left.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)
