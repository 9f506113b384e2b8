import json

from django.core.management.base import BaseCommand, CommandError

from clusters.models import Cluster
from optimization.planning import optimize
from spotopt.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Plan a cluster from its current nodes, last snapshot, policy, template and the catalog (optimizer format "
        "version 2) and print what would be kept, added and removed. Changes nothing."
    )

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
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
            return
        self._print(report)

    def _print(self, report: dict) -> None:
        out = self.stdout.write
        c = report["cluster"]
        out(f"Cluster {c['name']} (#{c['id']}, {c['region']}) - template {report['template']}, {report['strategy']}")
        out(f"{report['pods']} pods in {report['workloads']} workloads, {report['offerings']} offerings")
        header = f"  {'instance type':<16} {'zone':<12} {'capacity':<10} {'USD/h':>10}  node"
        for title, rows in (("Keep", report["keep"]), ("Add", report["add"]), ("Remove", report["remove"])):
            out("")
            out(f"{title} ({len(rows)}):")
            if rows:
                out(header)
            for row in rows:
                node = row.get("node") or row.get("id") or ""
                out(
                    f"  {row['instance_type']:<16} {row['zone']:<12} {row['capacity_type']:<10} "
                    f"{row['price']:>10}  {node}"
                )
        out("")
        plan = report["plan"]
        out(f"Plan:    {len(plan['nodes'])} nodes, {plan['hourly_cost']} USD/h")
        out(f"Current: {report['current']['nodes']} nodes, {report['current']['hourly_cost']} USD/h")
        saving = report["saving"]
        pct = f" ({saving['percent']}%)" if saving["percent"] is not None else ""
        out(self.style.SUCCESS(f"Saving:  {saving['hourly']} USD/h{pct}, {saving['monthly']} USD/month"))
        for note in report["notes"]:
            out(self.style.WARNING(note))
