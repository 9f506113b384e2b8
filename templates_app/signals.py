"""Questions that ``templates_app`` asks the apps above it (the layer order forbids it to import them). Receivers are
connected in the answering app's ``AppConfig.ready``."""

from django.dispatch import Signal

#: Sent (with ``template``) inside the transaction that deletes a template, after the template's row is locked;
#: each receiver returns the names of what uses it (e.g. the clusters whose policy names it). A non-empty answer
#: refuses the deletion.
template_users = Signal()
