import json
from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from clusters.models import Cluster
from clusters.optimization import optimize
from spotopt.errors import ApplicationError


class Command(BaseCommand):
    help = "Plan the cheapest safe node set for a cluster from its last snapshot, policy, template and the catalog."

    def add_arguments(self, parser):
        parser.add_argument("--cluster", type=int, required=True, help="cluster id")
        parser.add_argument("--json", action="store_true", help="print the whole report as JSON")

    def handle(self, *args, cluster: int, **options):
        target = Cluster.objects.select_related("organization").filter(pk=cluster).first()
        if target is None:
            raise CommandError(f"no cluster with id {cluster}")
        try:
            report = optimize(target)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(_dumps(report))
            return
        self._print(report)

    def _print(self, report: dict) -> None:
        out = self.stdout.write
        c = report["cluster"]
        out(f"Cluster {c['name']} (#{c['id']}, {c['region']}) - template {report['template']}, {report['strategy']}")
        out(f"{report['pods']} pods in {report['workloads']} workloads, {report['offerings']} offerings")
        nodes = Counter(
            (n["instance_type"], n["zone"], n["capacity_type"], n["price"]) for n in report["plan"]["nodes"]
        )
        out("")
        out(f"{'count':>5}  {'instance type':<16} {'zone':<12} {'capacity':<10} {'USD/h each':>12}")
        for (itype, zone, capacity, price), count in sorted(nodes.items()):
            out(f"{count:>5}  {itype:<16} {zone:<12} {capacity:<10} {price:>12}")
        out("")
        out(f"Plan:    {len(report['plan']['nodes'])} nodes, {report['plan']['hourly_cost']} USD/h")
        out(f"Current: {report['current']['nodes']} nodes, {report['current']['hourly_cost']} USD/h")
        saving = report["saving"]
        pct = f" ({saving['percent']}%)" if saving["percent"] is not None else ""
        out(self.style.SUCCESS(f"Saving:  {saving['hourly']} USD/h{pct}, {saving['monthly']} USD/month"))
        for note in report["notes"]:
            out(self.style.WARNING(note))


def _dumps(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True)
