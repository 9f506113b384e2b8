"""``AWS_ENDPOINT_URL`` end to end: every client talks to moto's standalone server (as the embedded default does)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from cloud import AccountSession, AwsCredentials, RetryPolicy, ec2, eks, sts


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_role_session_through_the_endpoint_from_environment(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    session = AccountSession.open(
        AwsCredentials(role_arn="arn:aws:iam::210987654321:role/SpotOptimizer", external_id="ext-1"),
        region="eu-west-1",
        retry=RetryPolicy(attempts=1),
    )
    identity = sts.caller_identity(session)
    assert identity.account_id == "210987654321"
    assert session.client("ec2").meta.endpoint_url == moto_server
    assert eks.list_clusters(session) == []
    assert ec2.describe_cluster_instances(session) == []
    assert "eu-west-1" in {r.name for r in ec2.describe_regions(session)}
