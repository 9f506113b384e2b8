"""Django admin is for SUPER_ADMIN users only: a CLIENT never gets in, whatever its flags say. Its login is the
accounts backend's (limits, audit, production refusal of the default password), and its logout is audited."""

from django.contrib import admin

from accounts import services
from accounts.forms import AdminLoginForm


def _super_admin_only(request) -> bool:
    user = request.user
    return bool(user.is_active and user.is_authenticated and getattr(user, "is_super_admin", False))


_admin_logout = admin.site.logout


def _audited_logout(request, extra_context=None):
    if request.method == "POST" and request.user.is_authenticated:
        services.session_logout(user=request.user)
    return _admin_logout(request, extra_context)


admin.site.has_permission = _super_admin_only
admin.site.login_form = AdminLoginForm
admin.site.logout = _audited_logout
admin.site.site_header = "Spot Optimizer administration"
admin.site.site_title = "Spot Optimizer admin"
