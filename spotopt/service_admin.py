"""What every domain model's Django admin is built from: the admin is a front door like the API and the console.

Every write the admin makes goes through the owning app's service, which validates, saves and audits (with the admin
as actor, and the request's address, user agent and request id):

- :class:`ServiceAdmin` is the base of every domain model's admin. A model admin offers add, change and delete only
  when it implements the matching ``service_create`` / ``service_update`` / ``service_delete`` hook; a model owned by
  a process (inventory, snapshots, the pricing catalog, the audit log) implements none and is read-only.
- :class:`ServiceModelForm` runs the service as the last step of the form's validation, inside the admin's
  transaction, so that the service's validation errors are shown on the form (never a 500) and nothing is written
  when they occur. ``save_model`` then has nothing left to do.
- Deletes, one or many, call the service once per object; a bulk delete is all or nothing.
- Admin actions call services through :func:`run_service_action`, one object at a time, and report what failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import quote
from django.db import models, transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from spotopt.errors import ApplicationError

# --- Related links ---------------------------------------------------------------------------------------------------


def admin_url(obj: models.Model) -> str | None:
    """The admin change page of ``obj``, or None when its model is not in the admin."""
    meta = obj._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[quote(obj.pk)])
    except NoReverseMatch:
        return None


def admin_link(obj: models.Model | None, text: str | None = None) -> str:
    """``obj`` as a link to its admin page ("-" when there is none)."""
    if obj is None:
        return "-"
    url = admin_url(obj)
    label = text if text is not None else str(obj)
    return format_html('<a href="{}">{}</a>', url, label) if url else label


def related_link(field: str, description: str | None = None) -> Callable[[models.Model], str]:
    """A changelist column showing the object behind foreign key ``field`` as a link to its admin page.

    The admin must name ``field`` in ``list_select_related`` so that the column costs no query per row.
    """

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj: models.Model) -> str:
        return admin_link(getattr(obj, field))

    column.__name__ = f"{field}_link"
    return column


# --- Writes through services -----------------------------------------------------------------------------------------


def _messages(problems: Any) -> list[str]:
    """Service field errors as flat text (they may be strings, lists, or nested per item)."""
    if isinstance(problems, str):
        return [problems]
    if isinstance(problems, dict):
        return [f"{key}: {text}" for key, value in problems.items() for text in _messages(value)]
    if isinstance(problems, list | tuple):
        return [text for item in problems for text in _messages(item)]
    return [str(problems)]


def apply_service_errors(form: forms.BaseForm, exc: ApplicationError, aliases: dict[str, str] | None = None) -> None:
    """Show a service's error on the form: each field error on its input, the rest (and the message) at the top."""
    placed = False
    for key, problems in (exc.fields or {}).items():
        target = (aliases or {}).get(key, key)
        for text in _messages(problems):
            if target in form.fields:
                form.add_error(target, text)
                placed = True
            else:
                form.add_error(None, f"{key}: {text}")
    if not placed:
        form.add_error(None, exc.message)


def changed_fields(form: forms.ModelForm, names: Iterable[str]) -> dict[str, Any]:
    """The fields among ``names`` that the admin changed, as a service's keyword arguments."""
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


class ServiceModelForm(forms.ModelForm):
    """A model form whose validation ends with the owning service's write.

    :class:`ServiceAdmin` sets ``service_write`` (a callable taking the form and returning the saved object) on the
    form class it builds for each request. The model's own validation is not run here: the service is the one place
    that validates, as it is for the API and the console.
    """

    service_write: Callable[[forms.ModelForm], models.Model] | None = None
    # Service field names that this form shows on a differently named input.
    service_error_aliases: dict[str, str] = {}

    def _post_clean(self) -> None:
        self.service_done = False
        if self.errors:
            return
        if self.service_write is None:
            raise ImproperlyConfiguredAdmin(f"{type(self).__name__} has no service to write with.")
        try:
            with transaction.atomic():
                self.instance = self.service_write(self)
        except ApplicationError as exc:
            apply_service_errors(self, exc, self.service_error_aliases)
            return
        self.service_done = True


class ImproperlyConfiguredAdmin(Exception):
    """A programming error: an admin form was about to save without its service."""


def run_service_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    objects: Iterable[models.Model],
    write: Callable[[models.Model], Any],
    *,
    done: str,
) -> int:
    """Call ``write`` (a service call) for each object. Reports how many succeeded (``done`` is formatted with
    ``count``) and, one message each, those the service refused. Returns the count.

    Each service call is its own transaction; a service that records a failure before raising it (validating a cloud
    account) keeps that record."""
    count = 0
    for obj in objects:
        try:
            write(obj)
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
        else:
            count += 1
    if count:
        modeladmin.message_user(request, done.format(count=count), messages.SUCCESS)
    return count


@admin.action(description="Delete selected %(verbose_name_plural)s", permissions=["delete"])
def delete_selected(modeladmin: ServiceAdmin, request: HttpRequest, queryset: models.QuerySet):
    """Django's confirmation page, then the service's delete for each object: all of them or none."""
    try:
        with transaction.atomic():
            return django_delete_selected(modeladmin, request, queryset)
    except ApplicationError as exc:
        modeladmin.message_user(request, f"Nothing was deleted: {exc.message}", messages.ERROR)
        return None


class ServiceAdmin(admin.ModelAdmin):
    """Base admin of a domain model: writes only through the services named by the hooks below.

    Implement ``service_create(request, form)`` and ``service_update(request, obj, form)`` (each returns the saved
    object; ``obj`` is freshly read from the database, the form's ``cleaned_data`` and ``changed_data`` hold the
    input) and ``service_delete(request, obj)``. Each hook left out takes the matching permission away.
    """

    form = ServiceModelForm
    actions = [delete_selected]

    # Hooks -----------------------------------------------------------------------------------------------------------
    def service_create(self, request: HttpRequest, form: forms.ModelForm) -> models.Model:
        raise NotImplementedError

    def service_update(self, request: HttpRequest, obj: models.Model, form: forms.ModelForm) -> models.Model:
        raise NotImplementedError

    def service_delete(self, request: HttpRequest, obj: models.Model) -> None:
        raise NotImplementedError

    def _implements(self, hook: str) -> bool:
        return getattr(type(self), hook) is not getattr(ServiceAdmin, hook)

    # Permissions follow the hooks ------------------------------------------------------------------------------------
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._implements("service_create") and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._implements("service_update") and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self._implements("service_delete") and super().has_delete_permission(request, obj)

    # Add and change --------------------------------------------------------------------------------------------------
    def get_form(self, request: HttpRequest, obj: models.Model | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        # modelform_factory builds a new class on every call: this request's writer stays with this request's form.
        form.service_write = staticmethod(partial(self._service_write, request))
        return form

    def _service_write(self, request: HttpRequest, form: forms.ModelForm) -> models.Model:
        if form.instance.pk is None:
            if not self.has_add_permission(request):
                raise ImproperlyConfiguredAdmin("add is not allowed")
            return self.service_create(request, form)
        if not self.has_change_permission(request, form.instance):
            raise ImproperlyConfiguredAdmin("change is not allowed")
        current = self.get_queryset(request).get(pk=form.instance.pk)
        return self.service_update(request, current, form)

    def save_model(self, request: HttpRequest, obj: models.Model, form: forms.ModelForm, change: bool) -> None:
        if not getattr(form, "service_done", False):
            raise ImproperlyConfiguredAdmin(f"{type(self).__name__}: the form was not saved by its service.")

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """Nothing to save: the service saved everything the form holds (these forms carry no many-to-many fields),
        and inlines here only show related rows."""
        for formset in formsets:
            if any(inline_form.has_changed() for inline_form in formset.forms):
                raise ImproperlyConfiguredAdmin(f"{type(self).__name__}: inlines are read-only.")
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def render_change_form(self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any):
        form = context["adminform"].form
        if request.method == "POST" and getattr(form, "service_done", False):
            # The service wrote but an inline's data was invalid, so the page is shown again: nothing may stay
            # written. This runs inside the admin's own transaction, which this rolls back.
            transaction.set_rollback(True)
            form.service_done = False
        return super().render_change_form(request, context, *args, **kwargs)

    # Delete ----------------------------------------------------------------------------------------------------------
    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        self.service_delete(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        for obj in queryset:
            self.service_delete(request, obj)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:  # the service refused; its transaction (and the admin's) rolled back
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.path.removesuffix("delete/") + "change/")


class ReadOnlyAdmin(ServiceAdmin):
    """A model that a process owns: listed and shown, never written from the admin."""

    actions: list = []
