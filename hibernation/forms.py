"""The schedule form of the console. Text inputs are turned into the service's values (the service validates them):
windows one per line as ``mon,tue,wed,thu 20:00-07:00`` (``+3`` wakes three days later), dates separated by spaces
or commas, kept labels one ``key=value`` per line."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from clusters.models import Cluster

from .models import HibernationSchedule
from .timetable import DAYS

_WINDOW = re.compile(r"^\s*(?P<days>[a-zA-Z, ]+?)\s+(?P<sleep>\S+)\s*-\s*(?P<wake>\S+?)(?:\s*\+(?P<after>\d+))?\s*$")


def windows_to_text(windows: list[dict]) -> str:
    lines = []
    for w in windows or []:
        default = 0 if w["wake_at"] > w["sleep_at"] else 1
        after = f" +{w['wake_after_days']}" if w.get("wake_after_days", default) != default else ""
        lines.append(f"{','.join(w['days'])} {w['sleep_at']}-{w['wake_at']}{after}")
    return "\n".join(lines)


def text_to_windows(text: str) -> list[Any]:
    """Each line as a window; a line that does not parse is passed on as is, so that the service names it."""
    out: list[Any] = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        match = _WINDOW.match(line)
        if not match:
            out.append(line.strip())
            continue
        days = [d.strip().lower() for d in match["days"].replace(" ", ",").split(",") if d.strip()]
        window: dict[str, Any] = {"days": days, "sleep_at": match["sleep"], "wake_at": match["wake"]}
        if match["after"] is not None:
            window["wake_after_days"] = int(match["after"])
        out.append(window)
    return out


def _dates(text: str) -> list[str]:
    return [d for d in re.split(r"[\s,]+", text or "") if d]


class ScheduleForm(forms.Form):
    cluster = forms.ModelChoiceField(queryset=Cluster.objects.none(), required=False)
    name = forms.CharField(max_length=200)
    time_zone = forms.CharField(max_length=64, required=False, help_text="IANA zone; empty: the cluster's.")
    windows = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text=f"One per line: days ({', '.join(DAYS)}) sleep-wake, e.g. mon,tue,wed,thu 20:00-07:00 or "
        "fri 20:00-07:00 +3",
    )
    pre_warm_minutes = forms.IntegerField(initial=30, required=False, help_text="0-240")
    holidays = forms.CharField(required=False, help_text="Dates asleep all day: 2026-12-24 2026-12-25")
    exceptions = forms.CharField(required=False, help_text="Dates awake all day")
    keep_node_groups = forms.CharField(required=False, help_text="Node groups / Auto Scaling groups that never sleep")
    keep_labels = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="Nodes that are never drained: key=value"
    )
    enabled = forms.BooleanField(required=False, initial=True)

    #: Form field → the service's field, for errors.
    FIELD_OF = {"keep.node_groups": "keep_node_groups", "keep.labels": "keep_labels", "keep": "keep_node_groups"}

    def __init__(self, *args, clusters=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if clusters is not None:
            self.fields["cluster"].queryset = clusters
        else:
            del self.fields["cluster"]

    @classmethod
    def initial_from(cls, schedule: HibernationSchedule) -> dict:
        keep = schedule.keep or {}
        return {
            "name": schedule.name,
            "time_zone": schedule.time_zone,
            "windows": windows_to_text(schedule.windows),
            "pre_warm_minutes": schedule.pre_warm_minutes,
            "holidays": " ".join(schedule.holidays),
            "exceptions": " ".join(schedule.exceptions),
            "keep_node_groups": ", ".join(keep.get("node_groups") or []),
            "keep_labels": "\n".join(f"{k}={v}" for k, v in (keep.get("labels") or {}).items()),
            "enabled": schedule.enabled,
        }

    def to_values(self) -> dict[str, Any]:
        """The service's values (``HibernationSchedule.EDITABLE_FIELDS``)."""
        data = self.cleaned_data
        labels: dict[str, str] = {}
        for line in (data.get("keep_labels") or "").splitlines():
            if line.strip():
                key, _, value = line.partition("=")
                labels[key.strip()] = value.strip()
        values = {
            "name": data.get("name") or "",
            "windows": text_to_windows(data.get("windows") or ""),
            "pre_warm_minutes": data.get("pre_warm_minutes") if data.get("pre_warm_minutes") is not None else 0,
            "holidays": _dates(data.get("holidays") or ""),
            "exceptions": _dates(data.get("exceptions") or ""),
            "keep": {
                "node_groups": [g.strip() for g in (data.get("keep_node_groups") or "").split(",") if g.strip()],
                "labels": labels,
            },
            "enabled": bool(data.get("enabled")),
        }
        if data.get("time_zone"):
            values["time_zone"] = data["time_zone"].strip()
        return values

    def apply_errors(self, fields: dict[str, list[str]] | None, message: str) -> None:
        for path, messages in (fields or {}).items():
            root = path.split("[", 1)[0].split(".", 1)[0] if path not in self.FIELD_OF else path
            name = self.FIELD_OF.get(root, root)
            target = name if name in self.fields else None
            for text in messages:
                self.add_error(target, f"{path}: {text}" if path != name else text)
        if not fields:
            self.add_error(None, message)
