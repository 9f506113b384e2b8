"""Django admin is for SUPER_ADMIN users only: a CLIENT never gets in, whatever its flags say."""

from django.contrib import admin


def _super_admin_only(request) -> bool:
    user = request.user
    return bool(user.is_active and user.is_authenticated and getattr(user, "is_super_admin", False))


admin.site.has_permission = _super_admin_only
admin.site.site_header = "Spot Optimizer administration"
admin.site.site_title = "Spot Optimizer admin"
