from django.urls import path

from . import api

urlpatterns = [
    path("auth/signup", api.SignupView.as_view(), name="auth-signup"),
    path("auth/login", api.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", api.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", api.LogoutView.as_view(), name="auth-logout"),
    path("auth/change-password", api.ChangePasswordView.as_view(), name="auth-change-password"),
    path("auth/me", api.MeView.as_view(), name="auth-me"),
]
