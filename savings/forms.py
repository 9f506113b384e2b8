"""The organization's savings settings form; its fields come from the model, the service validates."""

from __future__ import annotations

from django import forms

from .models import SavingsSettings


class SavingsSettingsForm(forms.ModelForm):
    class Meta:
        model = SavingsSettings
        fields = SavingsSettings.EDITABLE_FIELDS
