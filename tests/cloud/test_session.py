"""Sessions, the call wrapper: endpoint override, ExternalId on AssumeRole, throttling retries, error mapping."""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from cloud import AccountSession, AwsCredentials, RetryPolicy, call, errors, sts
from cloud.session import map_client_error

ROLE_ARN = "arn:aws:iam::111122223333:role/SpotOptimizer"


def test_endpoint_url_comes_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    session = AccountSession.open(AwsCredentials(), region="eu-west-1")
    assert session.endpoint_url == "http://127.0.0.1:5999"
    assert session.client("ec2").meta.endpoint_url == "http://127.0.0.1:5999"
    assert session.client("ec2").meta.region_name == "eu-west-1"


def test_explicit_endpoint_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    session = AccountSession.open(AwsCredentials(), endpoint_url="http://moto:5000")
    assert session.client("sts").meta.endpoint_url == "http://moto:5000"


def test_clients_use_botocore_retry_mode() -> None:
    session = AccountSession.open(AwsCredentials(), retry_mode="adaptive")
    assert session.client("ec2").meta.config.retries["mode"] == "adaptive"


def test_assume_role_sends_the_external_id() -> None:
    session = AccountSession.open(AwsCredentials())
    client = session.base_client("sts")
    with Stubber(client) as stub:
        stub.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": "ASIAEXAMPLEEXAMPLE",
                    "SecretAccessKey": "s" * 40,
                    "SessionToken": "token-token-token",
                    "Expiration": "2030-01-01T00:00:00Z",
                }
            },
            expected_params={
                "RoleArn": ROLE_ARN,
                "RoleSessionName": "spot-optimizer",
                "DurationSeconds": 3600,
                "ExternalId": "ext-123",
            },
        )
        creds = sts.assume_role(client, role_arn=ROLE_ARN, external_id="ext-123")
    assert creds.access_key_id == "ASIAEXAMPLEEXAMPLE"
    assert "s" * 40 not in repr(creds)  # secrets stay out of logs and reprs


def test_role_session_reads_caller_identity_of_the_role_account(moto_module: None) -> None:
    session = AccountSession.open(AwsCredentials(role_arn=ROLE_ARN, external_id="ext-123"), endpoint_url="")
    identity = sts.caller_identity(session)
    assert identity.account_id == "111122223333"
    assert "assumed-role/SpotOptimizer" in identity.arn


def test_assumed_credentials_are_reused_in_other_regions(moto_module: None) -> None:
    session = AccountSession.open(AwsCredentials(role_arn=ROLE_ARN, external_id="ext-123"), endpoint_url="")
    first = session.assumed_credentials()
    other = session.for_region("eu-west-1")
    assert other.assumed_credentials() == first
    assert other.client("ec2").meta.region_name == "eu-west-1"


def test_access_denied_on_assume_role_is_mapped() -> None:
    session = AccountSession.open(AwsCredentials(role_arn=ROLE_ARN, external_id="wrong"))
    client = session.base_client("sts")
    with Stubber(client) as stub:
        stub.add_client_error(
            "assume_role",
            service_error_code="AccessDenied",
            service_message=f"User is not authorized to perform: sts:AssumeRole on resource: {ROLE_ARN}",
            http_status_code=403,
        )
        with pytest.raises(errors.AccessDenied) as info:
            sts.assume_role(client, role_arn=ROLE_ARN, external_id="wrong")
    assert info.value.code == "AccessDenied"
    assert "not authorized" in info.value.message
    assert info.value.operation == "assume_role"


def test_throttling_is_retried_then_succeeds(no_sleep: tuple[RetryPolicy, list[float]]) -> None:
    retry, delays = no_sleep
    client = AccountSession.open(AwsCredentials()).client("ec2")
    with Stubber(client) as stub:
        stub.add_client_error("describe_regions", service_error_code="RequestLimitExceeded", http_status_code=503)
        stub.add_client_error("describe_regions", service_error_code="ThrottlingException", http_status_code=400)
        stub.add_response("describe_regions", {"Regions": [{"RegionName": "eu-west-1"}]})
        data = call(client, "describe_regions", retry=retry)
        stub.assert_no_pending_responses()
    assert data["Regions"][0]["RegionName"] == "eu-west-1"
    assert len(delays) == 2
    assert all(0 <= d <= 8.0 for d in delays)


def test_throttling_gives_up_after_the_last_attempt(no_sleep: tuple[RetryPolicy, list[float]]) -> None:
    retry, delays = no_sleep
    client = AccountSession.open(AwsCredentials()).client("ec2")
    with Stubber(client) as stub:
        for _ in range(retry.attempts):
            stub.add_client_error("describe_regions", service_error_code="Throttling", http_status_code=400)
        with pytest.raises(errors.Throttled):
            call(client, "describe_regions", retry=retry)
    assert len(delays) == retry.attempts - 1


def test_other_errors_are_not_retried(no_sleep: tuple[RetryPolicy, list[float]]) -> None:
    retry, delays = no_sleep
    client = AccountSession.open(AwsCredentials()).client("ec2")
    with Stubber(client) as stub:
        stub.add_client_error("describe_regions", service_error_code="UnauthorizedOperation", http_status_code=403)
        with pytest.raises(errors.AccessDenied):
            call(client, "describe_regions", retry=retry)
    assert delays == []


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDenied", 403, errors.AccessDenied),
        ("UnauthorizedOperation", 403, errors.AccessDenied),
        ("InvalidClientTokenId", 403, errors.AccessDenied),
        ("InvalidInstanceID.NotFound", 400, errors.NotFound),
        ("ResourceNotFoundException", 404, errors.NotFound),
        ("InsufficientInstanceCapacity", 500, errors.InsufficientCapacity),
        ("SpotMaxPriceTooLow", 400, errors.InsufficientCapacity),
        ("Throttling", 400, errors.Throttled),
        ("InvalidParameterValue", 400, errors.InvalidRequest),
        ("404", 404, errors.Unavailable),
        ("InternalError", 500, errors.Unavailable),
    ],
)
def test_error_codes_map_to_product_exceptions(code: str, status: int, expected: type[errors.CloudError]) -> None:
    exc = ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "DescribeThings"
    )
    mapped = map_client_error(exc, service="ec2")
    assert type(mapped) is expected
    assert isinstance(mapped, errors.CloudError)
    assert mapped.code == code


def test_unreachable_endpoint_is_unavailable() -> None:
    session = AccountSession.open(AwsCredentials(), endpoint_url="http://127.0.0.1:9", max_attempts=1)
    with pytest.raises(errors.Unavailable):
        call(session.client("ec2"), "describe_regions", retry=session.retry)


def test_secrets_are_not_in_credentials_repr(caplog: pytest.LogCaptureFixture) -> None:
    creds = AwsCredentials(access_key_id="AKIAEXAMPLE", secret_access_key="very-secret-value")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("creds %r", creds)
    assert "very-secret-value" not in caplog.text
