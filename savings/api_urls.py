from django.urls import path

from . import api

urlpatterns = [
    path("costs/history", api.CostHistoryView.as_view(), name="costs-history"),
    path("savings", api.SavingsView.as_view(), name="savings"),
    path("savings/ledger", api.LedgerView.as_view(), name="savings-ledger"),
]
