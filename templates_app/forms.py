"""Console form of a node template. It parses the operator's text inputs into the API's JSON shapes; the rules
are checked by the same service as the API's (``validation.template_errors``)."""

from __future__ import annotations

from typing import Any

from django import forms

from .models import NodeTemplate
from .validation import ARCHITECTURES, CAPACITY_TYPES, TAINT_EFFECTS

REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
)
# Service error keys that the form shows on a differently named input.
FIELD_ALIASES = {"instance_families": "include_families"}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]


class NodeTemplateForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    architectures = forms.MultipleChoiceField(
        choices=[(a, a) for a in ARCHITECTURES], widget=forms.CheckboxSelectMultiple, required=False
    )
    include_families = forms.CharField(
        required=False,
        label="Instance families",
        help_text="Comma-separated patterns, such as m*, c7*. Empty: all.",
        widget=forms.TextInput(attrs={"placeholder": "m*, c7*"}),
    )
    exclude_families = forms.CharField(
        required=False, label="Excluded families", widget=forms.TextInput(attrs={"placeholder": "t*"})
    )
    min_vcpu = forms.IntegerField(required=False, label="Min vCPU")
    max_vcpu = forms.IntegerField(required=False, label="Max vCPU")
    min_memory_gib = forms.DecimalField(required=False, max_digits=8, decimal_places=2, label="Min memory (GiB)")
    max_memory_gib = forms.DecimalField(required=False, max_digits=8, decimal_places=2, label="Max memory (GiB)")
    gpu = forms.ChoiceField(choices=NodeTemplate.Gpu.choices, initial=NodeTemplate.Gpu.EXCLUDE, label="GPU")
    exclude_burstable = forms.BooleanField(required=False, label="Exclude burstable (t*)")
    exclude_bare_metal = forms.BooleanField(required=False, initial=True, label="Exclude bare metal")
    current_generation_only = forms.BooleanField(required=False, initial=True, label="Current generation only")
    capacity_types = forms.MultipleChoiceField(
        choices=[(c, c) for c in CAPACITY_TYPES], widget=forms.CheckboxSelectMultiple, required=False
    )
    spot_fallback = forms.BooleanField(required=False, initial=True, label="Fall back to on-demand")
    fallback_restore_minutes = forms.IntegerField(initial=30, label="Back to spot after (minutes)")
    spot_diversity = forms.BooleanField(required=False, label="Spread across spot pools")
    max_price_increase_pct = forms.IntegerField(initial=10, label="Max price increase for diversity (%)")
    zones = forms.CharField(
        required=False,
        help_text="Comma-separated. Empty: every zone.",
        widget=forms.TextInput(attrs={"placeholder": "us-east-1a, us-east-1b"}),
    )
    strategy = forms.ChoiceField(
        choices=NodeTemplate.Strategy.choices, initial=NodeTemplate.Strategy.PRICE_CAPACITY_OPTIMIZED
    )
    labels = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "team=web"}),
        help_text="One key=value per line.",
    )
    taints = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "dedicated=gpu:NoSchedule"}),
        help_text="One key=value:Effect per line (as kubectl taint).",
    )
    max_hourly_budget = forms.CharField(
        required=False,
        label="Max hourly budget (USD/h)",
        widget=forms.TextInput(attrs={"placeholder": "12.50", "inputmode": "decimal"}),
    )
    is_default = forms.BooleanField(required=False, label="Default template of the organization")

    def clean_labels(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for line in self.cleaned_data["labels"].splitlines():
            line = line.strip()
            if not line:
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise forms.ValidationError(f'"{line}": write key=value.')
            labels[key.strip()] = value.strip()
        return labels

    def clean_taints(self) -> list[dict[str, str]]:
        taints = []
        for line in self.cleaned_data["taints"].splitlines():
            line = line.strip()
            if not line:
                continue
            rest, sep, effect = line.rpartition(":")
            if not sep or effect not in TAINT_EFFECTS:
                raise forms.ValidationError(f'"{line}": write key=value:Effect ({", ".join(TAINT_EFFECTS)}).')
            key, _, value = rest.partition("=")
            taints.append({"key": key.strip(), "value": value.strip(), "effect": effect})
        return taints

    def to_data(self) -> dict[str, Any]:
        """The cleaned form in the API's shapes (what ``services.template_create`` takes)."""
        d = dict(self.cleaned_data)
        d["instance_families"] = {
            "include": _split(d.pop("include_families")),
            "exclude": _split(d.pop("exclude_families")),
        }
        d["zones"] = _split(d["zones"])
        d["max_hourly_budget"] = d["max_hourly_budget"].strip() or None
        return d

    @classmethod
    def initial_from(cls, template: NodeTemplate) -> dict[str, Any]:
        initial = {field: getattr(template, field) for field in cls.base_fields if hasattr(template, field)}
        initial["include_families"] = ", ".join(template.include_families)
        initial["exclude_families"] = ", ".join(template.exclude_families)
        initial["zones"] = ", ".join(template.zones or [])
        initial["labels"] = "\n".join(f"{k}={v}" for k, v in (template.labels or {}).items())
        initial["taints"] = "\n".join(
            f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}" for t in (template.taints or [])
        )
        initial["max_hourly_budget"] = str(template.max_hourly_budget) if template.max_hourly_budget else ""
        return initial

    def apply_errors(self, fields: dict[str, Any] | None, message: str) -> None:
        """Show a service's field errors on the matching inputs."""
        if not fields:
            self.add_error(None, message)
            return
        for key, problems in fields.items():
            target = FIELD_ALIASES.get(key, key)
            for text in _messages(problems):
                self.add_error(target if target in self.fields else None, text)


def _messages(problems: Any) -> list[str]:
    """Flatten nested error structures (``{"include": [...]}``, per-taint dicts) into plain messages."""
    if isinstance(problems, str):
        return [problems]
    if isinstance(problems, dict):
        return [m for value in problems.values() for m in _messages(value)]
    if isinstance(problems, list):
        return [m for value in problems for m in _messages(value)]
    return [str(problems)]
