"""Console form of the cluster policy; the rules are checked by ``policy_services.policy_errors``."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from spotopt.api.parsers import loads

from .models import ClusterPolicy
from .policy_services import POLICY_FIELDS


class _JSONListField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})

    def to_python(self, value: Any) -> Any:
        value = (super().to_python(value) or "").strip()
        if not value:
            return []
        try:
            # The API's JSON rules: no deep nesting, NUL, lone surrogates or non-finite numbers.
            data = loads(value)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from exc
        if not isinstance(data, list):
            raise forms.ValidationError("Expected a JSON list.")
        return data

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            # One item per line: readable, and still JSON.
            return "[]" if not value else "[\n  " + ",\n  ".join(json.dumps(item) for item in value) + "\n]"
        return value


class ClusterPolicyForm(forms.Form):
    optimization_enabled = forms.BooleanField(required=False, label="Optimization enabled")
    mode = forms.ChoiceField(choices=ClusterPolicy.Mode.choices)
    node_template = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Node template",
    )
    on_demand_base = forms.FloatField(label="On-demand base (share of each workload, 0–1)")
    max_pool_share = forms.FloatField(label="Max share of spot nodes in one pool (0–1)")
    max_interruption_rate = forms.FloatField(required=False, label="Max interruption rate (0–1)")
    headroom_pct = forms.IntegerField(label="Headroom (%)")
    consolidation_policy = forms.ChoiceField(choices=ClusterPolicy.ConsolidationPolicy.choices, label="Consolidation")
    consolidate_after = forms.CharField(max_length=32, help_text='"30s", "5m", "1h" or "Never".')
    disruption_budgets = _JSONListField(
        required=False,
        help_text='JSON, as in Karpenter: [{"nodes": "10%"}, {"nodes": "0", "schedule": "0 9 * * mon-fri", '
        '"duration": "8h", "reasons": ["Drifted"]}]. Schedules are UTC.',
    )
    maintenance_windows = _JSONListField(
        required=False, help_text='JSON: [{"schedule": "0 2 * * sun", "duration": "4h"}]. Empty: any time. UTC.'
    )
    on_rebalance = forms.ChoiceField(choices=ClusterPolicy.OnRebalance.choices, label="On rebalance recommendation")
    uncordon_after_minutes = forms.IntegerField(required=False, label="Uncordon after (minutes)")
    validation_delay_seconds = forms.IntegerField(
        label="Validation delay (seconds)", help_text="Plan again after this before acting."
    )
    ready_timeout_minutes = forms.IntegerField(label="Ready timeout (minutes)")
    drain_timeout_minutes = forms.IntegerField(label="Drain timeout (minutes)")
    min_saving_pct = forms.DecimalField(label="Minimum saving (%)", max_digits=5, decimal_places=2)

    def __init__(self, *args, templates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["node_template"].choices = [("", "The organization's default")] + [
            (t.pk, t.name + (" (default)" if t.is_default else "")) for t in templates
        ]

    @staticmethod
    def initial_from(policy: ClusterPolicy) -> dict[str, Any]:
        initial = {f: getattr(policy, f) for f in POLICY_FIELDS if f != "node_template"}
        initial["node_template"] = policy.node_template_id
        return initial

    def apply_errors(self, fields: dict[str, Any] | None, message: str) -> None:
        if not fields:
            self.add_error(None, message)
            return
        for key, problems in fields.items():
            for text in _messages(problems):
                self.add_error(key if key in self.fields else None, text)


def _messages(problems: Any, prefix: str = "") -> list[str]:
    if isinstance(problems, str):
        return [prefix + problems]
    if isinstance(problems, dict):
        return [
            m
            for k, v in problems.items()
            for m in _messages(v, f"{prefix}{k}: " if k != "non_field_errors" else prefix)
        ]
    if isinstance(problems, list):
        out = []
        for i, value in enumerate(problems):
            item_prefix = f"{prefix}#{i + 1} " if isinstance(value, dict) else prefix
            out += _messages(value, item_prefix)
        return out
    return [prefix + str(problems)]
