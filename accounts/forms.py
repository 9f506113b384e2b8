from django import forms


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
