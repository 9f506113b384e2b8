"""What the apps above ``clusters`` add to its figures and pages: the layer order forbids ``clusters`` to import
them, so each registers a callback here in its ``AppConfig.ready`` (the agent app adds its connection state).

- A *summary column* adds one value per cluster to the dashboard's summary, plus totals:
  ``fetch(clusters) -> ({cluster_id: value}, {total_name: value})`` in a constant number of queries.
- A *detail panel* adds a section to the cluster's console page: ``render(request, cluster) -> html``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

SummaryFetch = Callable[[list], tuple[dict[int, Any], dict[str, Any]]]
PanelRender = Callable[[HttpRequest, Any], str]

_summary_columns: dict[str, SummaryFetch] = {}
_detail_panels: dict[str, PanelRender] = {}


def register_summary_column(name: str, fetch: SummaryFetch) -> None:
    _summary_columns[name] = fetch


def summary_columns() -> dict[str, SummaryFetch]:
    return dict(_summary_columns)


def register_detail_panel(name: str, render: PanelRender) -> None:
    _detail_panels[name] = render


def detail_panels() -> dict[str, PanelRender]:
    return dict(_detail_panels)
