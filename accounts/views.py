"""Console authentication pages; they go through the same services as the API (limits, audit)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from spotopt.errors import ApplicationError
from spotopt.middleware import client_ip

from . import services
from .forms import ChangePasswordForm, LoginForm, SignupForm

_BACKEND = "accounts.backends.AccountsBackend"


def _apply_error(form, exc: ApplicationError) -> None:
    if exc.fields:
        for field, errors in exc.fields.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
    else:
        form.add_error(None, exc.message)


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("console:dashboard")
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            user = authenticate(request, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            if user is not None:
                login(request, user)
                return redirect(_next_url(request))
            form.add_error(None, services.LOGIN_FAILED_MESSAGE)
            status = 401
    return render(request, "accounts/login.html", {"form": form, "next": _next_url(request)}, status=status)


@require_http_methods(["GET", "POST"])
def signup_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("console:dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_signup(**form.cleaned_data)
        except ApplicationError as exc:
            _apply_error(form, exc)
        else:
            login(request, user, backend=_BACKEND)
            messages.success(request, f"Welcome! {user.organization.name} is ready.")
            return redirect("console:dashboard")
    return render(request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        services.session_logout(user=request.user)
    logout(request)
    return redirect("accounts:login")


@login_required
@require_http_methods(["GET", "POST"])
def change_password_view(request: HttpRequest) -> HttpResponse:
    form = ChangePasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_change_password(user=request.user, **form.cleaned_data, ip=client_ip(request))
        except ApplicationError as exc:
            _apply_error(form, exc)
        else:
            update_session_auth_hash(request, request.user)
            messages.success(request, "Password changed. Other sessions and API tokens were signed out.")
            return redirect("console:dashboard")
    return render(request, "accounts/change_password.html", {"form": form, "nav": "account"})
