"""The simulated AWS of the embedded default and the end-to-end tests: moto's server with a thin layer in front of it
that answers as EC2 does when a pool lacks capacity (moto has no capacity errors of its own).

Pools are (instance type, zone, capacity type). For an unavailable pool, an ``instant`` EC2 Fleet leaves out the
overrides of that pool and reports each in the response's ``Errors`` (``InsufficientInstanceCapacity``), as EC2 does;
``RunInstances`` in it fails with ``InsufficientInstanceCapacity``. The pools are set in process
(:meth:`SimulatedAws.set_unavailable`) or over HTTP: ``GET|PUT /_spotopt/capacity`` with
``{"unavailable": [{"instance_type", "zone", "capacity_type"}]}``.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterable
from io import BytesIO
from typing import Any
from urllib.parse import parse_qsl, urlencode

from moto.ec2.models import ec2_backends
from moto.server import DomainDispatcherApplication, MotoRequestHandler, ThreadedMotoServer, create_backend_app
from werkzeug.serving import make_server

CONTROL_PATH = "/_spotopt/capacity"
Pool = tuple[str, str, str]
_OVERRIDE = re.compile(r"^LaunchTemplateConfigs\.(\d+)\.Overrides\.(\d+)\.(.+)$")


def _zone_of_subnet(subnet_id: str) -> str:
    for account in list(ec2_backends.keys()):
        regions = ec2_backends[account]
        for region in list(regions.keys()):
            for zone, subnets in regions[region].subnets.items():
                if subnet_id in subnets:
                    return zone
    return ""


class CapacityLayer:
    """WSGI middleware in front of moto: removes unavailable pools from EC2 launches and reports them as EC2 does."""

    def __init__(self, app: Any, unavailable: Iterable[Pool] = ()) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._unavailable: set[Pool] = set(unavailable)
        self.refused: list[Pool] = []

    # --- control -------------------------------------------------------------------------------------------------
    def set_unavailable(self, pools: Iterable[Pool]) -> None:
        with self._lock:
            self._unavailable = {(t, z, c) for t, z, c in pools}

    @property
    def unavailable(self) -> set[Pool]:
        with self._lock:
            return set(self._unavailable)

    def _control(self, environ: dict, start_response: Any) -> list[bytes]:
        if environ["REQUEST_METHOD"] in ("PUT", "POST"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                data = json.loads(environ["wsgi.input"].read(length) or b"{}")
                pools = [(p["instance_type"], p["zone"], p["capacity_type"]) for p in data.get("unavailable", [])]
            except (ValueError, KeyError, TypeError, AttributeError):
                start_response("400 Bad Request", [("Content-Type", "application/json")])
                return [b'{"error": "expected {\\"unavailable\\": [{instance_type, zone, capacity_type}]}"}']
            self.set_unavailable(pools)
        body = json.dumps(
            {
                "unavailable": [
                    {"instance_type": t, "zone": z, "capacity_type": c} for t, z, c in sorted(self.unavailable)
                ]
            }
        ).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    # --- EC2 -----------------------------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Any) -> Any:
        if environ.get("PATH_INFO") == CONTROL_PATH:
            return self._control(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST" or not self.unavailable:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = BytesIO(raw)
        params = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        action = dict(params).get("Action")
        if action == "CreateFleet":
            return self._create_fleet(environ, start_response, params)
        if action == "RunInstances":
            return self._run_instances(environ, start_response, params)
        return self.app(environ, start_response)

    def _run_instances(self, environ: dict, start_response: Any, params: list) -> Any:
        p = dict(params)
        zone = p.get("Placement.AvailabilityZone") or _zone_of_subnet(p.get("SubnetId", ""))
        capacity = "spot" if p.get("InstanceMarketOptions.MarketType") == "spot" else "on-demand"
        pool = (p.get("InstanceType", ""), zone, capacity)
        if pool not in self.unavailable:
            return self.app(environ, start_response)
        self.refused.append(pool)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InsufficientInstanceCapacity</Code>'
            f"<Message>We currently do not have sufficient {pool[0]} capacity in the Availability Zone you "
            f"requested ({zone}).</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
        ).encode()
        start_response("400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]

    def _create_fleet(self, environ: dict, start_response: Any, params: list) -> Any:
        p = dict(params)
        capacity = p.get("TargetCapacitySpecification.DefaultTargetCapacityType", "on-demand")
        overrides: dict[tuple[str, str], dict[str, str]] = {}
        for key, value in params:
            m = _OVERRIDE.match(key)
            if m:
                overrides.setdefault((m.group(1), m.group(2)), {})[m.group(3)] = value
        refused: list[tuple[tuple[str, str], dict[str, str], Pool]] = []
        for index, spec in overrides.items():
            zone = spec.get("AvailabilityZone") or _zone_of_subnet(spec.get("SubnetId", ""))
            pool = (spec.get("InstanceType", ""), zone, capacity)
            if pool in self.unavailable:
                refused.append((index, spec, pool))
        if not refused:
            return self.app(environ, start_response)
        self.refused.extend(pool for _, _, pool in refused)
        template_key = "LaunchTemplateConfigs.{}.LaunchTemplateSpecification.LaunchTemplateId"
        errors = "".join(
            "<item><launchTemplateAndOverrides><launchTemplateSpecification>"
            f"<launchTemplateId>{p.get(template_key.format(index[0]), '')}"
            "</launchTemplateId></launchTemplateSpecification><overrides>"
            f"<instanceType>{spec.get('InstanceType', '')}</instanceType>"
            f"<subnetId>{spec.get('SubnetId', '')}</subnetId><availabilityZone>{pool[1]}</availabilityZone>"
            f"</overrides></launchTemplateAndOverrides><lifecycle>{capacity}</lifecycle>"
            "<errorCode>InsufficientInstanceCapacity</errorCode>"
            f"<errorMessage>There is no {capacity} capacity available that matches your request.</errorMessage>"
            "</item>"
            for index, spec, pool in refused
        )
        kept = [index for index in overrides if index not in {i for i, _, _ in refused}]
        if not kept:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?><CreateFleetResponse '
                'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
                f"<requestId>{uuid.uuid4()}</requestId><fleetId>fleet-{uuid.uuid4()}</fleetId>"
                f"<errorSet>{errors}</errorSet><fleetInstanceSet/></CreateFleetResponse>"
            ).encode()
            start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
            return [body]
        # Forward the request without the refused overrides (renumbered), then add the errors to the answer.
        renumber: dict[tuple[str, str], str] = {}
        per_config: dict[str, int] = {}
        for config, n in kept:
            per_config[config] = per_config.get(config, 0) + 1
            renumber[(config, n)] = str(per_config[config])
        forwarded = []
        for key, value in params:
            m = _OVERRIDE.match(key)
            if m:
                index = (m.group(1), m.group(2))
                if index not in renumber:
                    continue
                key = f"LaunchTemplateConfigs.{index[0]}.Overrides.{renumber[index]}.{m.group(3)}"
            forwarded.append((key, value))
        body = urlencode(forwarded).encode()
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        answer = b"".join(self.app(environ, capture))
        text = answer.decode()
        if "<errorSet/>" in text:
            text = text.replace("<errorSet/>", f"<errorSet>{errors}</errorSet>")
        elif "<errorSet>" in text:
            text = text.replace("<errorSet>", f"<errorSet>{errors}", 1)
        else:
            text = text.replace("</CreateFleetResponse>", f"<errorSet>{errors}</errorSet></CreateFleetResponse>")
        out = text.encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(out)))])
        return [out]


class SimulatedAws(ThreadedMotoServer):
    """moto's threaded server with the capacity layer in front."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0, unavailable: Iterable[Pool] = ()) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.layer = CapacityLayer(DomainDispatcherApplication(create_backend_app), unavailable)

    def _server_entry(self) -> None:
        self._server = make_server(self._ip_address, self._port, self.layer, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def set_unavailable(self, pools: Iterable[Pool]) -> None:
        self.layer.set_unavailable(pools)
