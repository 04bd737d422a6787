"""The metric names Grafana dashboards query, and the names a ``/metrics`` page exports.

A small PromQL reader, enough for our dashboards: strings, label matchers, range selectors and the
label lists of ``by``/``without``/``on``/``ignoring``/``group_left``/``group_right`` are removed; what
remains that is neither a function, a keyword nor a number is a metric name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk",
    "bottomk", "quantile", "count_values", "group",
}
FUNCTIONS = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\(")
IDENT = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b")
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
"""Series Prometheus makes itself for every target."""


def _expressions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        if node.get("type") == "query" and isinstance(node.get("query"), str):
            yield node["query"]  # template variables
        for value in node.values():
            yield from _expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _expressions(value)


def metric_names(expr: str) -> set[str]:
    """Metric names in one PromQL expression (Grafana's ``$var``/``$__rate_interval`` removed)."""
    text = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_:]*\}?", "1", expr)
    # Grafana's label_values(metric{...}, label): only the metric is one
    text = re.sub(r"label_values\(\s*([^,]+?)\s*,\s*\w+\s*\)", r"\1", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"\{[^{}]*\}", "", text)
    text = re.sub(r"\[[^\[\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    functions = set(FUNCTIONS.findall(text))
    names = set()
    for match in IDENT.finditer(text):
        word = match.group(0)
        if word in KEYWORDS or word in functions or re.fullmatch(r"\d.*", word):
            continue
        names.add(word)
    return names


def dashboard_metrics(folder: Path) -> set[str]:
    """Every metric name queried by the dashboards (JSON files) under ``folder``."""
    names: set[str] = set()
    for path in sorted(folder.rglob("*.json")):
        for expr in _expressions(json.loads(path.read_text())):
            names |= metric_names(expr)
    return names - PROMETHEUS_OWN


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
    "gauge": ("",),
    "info": ("_info",),
}


def exported_names(page: str) -> set[str]:
    """The series names a ``/metrics`` page exports, including those of families with no sample yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(page):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names
