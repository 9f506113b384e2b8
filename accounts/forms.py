from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from spotopt.errors import ApplicationError


class AdminLoginForm(AdminAuthenticationForm):
    """Django admin's login form; the check itself is the accounts backend's (limits, audit, the default password
    refusal), whose refusals become the form's error instead of a server error."""

    def clean(self):
        try:
            return super().clean()
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc


class LoginForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class SignupForm(forms.Form):
    organization_name = forms.CharField(label="Organization", max_length=200)
    full_name = forms.CharField(label="Your name", max_length=200, required=False)
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


class ChangePasswordForm(forms.Form):
    old_password = forms.CharField(label="Current password", strip=False, widget=forms.PasswordInput)
    new_password = forms.CharField(label="New password", strip=False, widget=forms.PasswordInput)


def _split_regions(value: str) -> list[str]:
    return [r.strip() for r in value.replace("\n", ",").split(",") if r.strip()]


class CloudAccountForm(forms.Form):
    """Link (or edit) an AWS account. Access keys are a fallback; blank keys on edit keep the stored ones."""

    name = forms.CharField(max_length=200)
    role_arn = forms.CharField(
        label="Role ARN",
        max_length=2048,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "arn:aws:iam::123456789012:role/SpotOptimizer"}),
    )
    regions = forms.CharField(
        label="Regions (comma-separated)",
        max_length=1000,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "us-east-1, eu-west-1"}),
    )
    access_key_id = forms.CharField(label="Access key id (fallback)", max_length=128, required=False)
    secret_access_key = forms.CharField(
        label="Secret access key (fallback)",
        max_length=256,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    def clean_regions(self) -> list[str]:
        return _split_regions(self.cleaned_data.get("regions", ""))
