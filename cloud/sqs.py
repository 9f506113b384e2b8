"""SQS: the interruption queue of a linked account and region (EventBridge delivers EC2 events to it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloud.session import AccountSession, call

#: ReceiveMessage and DeleteMessageBatch take at most ten messages.
BATCH = 10


@dataclass(frozen=True)
class QueueMessage:
    """One received message: its body (the EventBridge event as JSON text) and the handle that deletes it."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1


@dataclass(frozen=True)
class DeleteFailure:
    message_id: str
    code: str
    message: str


def queue_url(session: AccountSession, *, name: str) -> str:
    """The URL of the queue ``name`` in the session's region; :class:`cloud.errors.NotFound` when it does not exist."""
    return str(call(session.client("sqs"), "get_queue_url", retry=session.retry, QueueName=name)["QueueUrl"])


def create_queue(session: AccountSession, *, name: str, retention_seconds: int = 300) -> str:
    """Create the queue (idempotent; the simulated world's stand-in for the regional template); returns its URL."""
    raw = call(
        session.client("sqs"),
        "create_queue",
        retry=session.retry,
        QueueName=name,
        Attributes={"MessageRetentionPeriod": str(retention_seconds)},
    )
    return str(raw["QueueUrl"])


def queue_arn(session: AccountSession, *, url: str) -> str:
    raw = call(
        session.client("sqs"), "get_queue_attributes", retry=session.retry, QueueUrl=url, AttributeNames=["QueueArn"]
    )
    return str((raw.get("Attributes") or {}).get("QueueArn", ""))


def receive(
    session: AccountSession, *, url: str, max_messages: int = BATCH, wait_seconds: int = 20
) -> list[QueueMessage]:
    """Long-poll up to ``max_messages`` (at most ten) messages; an empty list when the wait ran out."""
    raw = call(
        session.client("sqs"),
        "receive_message",
        retry=session.retry,
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(int(max_messages), BATCH)),
        WaitTimeSeconds=max(0, min(int(wait_seconds), 20)),
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )
    return [
        QueueMessage(
            message_id=m["MessageId"],
            receipt_handle=m["ReceiptHandle"],
            body=m.get("Body", ""),
            receive_count=int((m.get("Attributes") or {}).get("ApproximateReceiveCount", 1) or 1),
        )
        for m in raw.get("Messages") or ()
    ]


def delete(session: AccountSession, *, url: str, messages: Sequence[QueueMessage]) -> list[DeleteFailure]:
    """Delete ``messages`` (ten per call); returns the ones SQS refused (they will be received again)."""
    failures: list[DeleteFailure] = []
    client = session.client("sqs")
    for i in range(0, len(messages), BATCH):
        batch = messages[i : i + BATCH]
        raw = call(
            client,
            "delete_message_batch",
            retry=session.retry,
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m.receipt_handle} for n, m in enumerate(batch)],
        )
        for failed in raw.get("Failed") or ():
            m = batch[int(failed["Id"])]
            failures.append(DeleteFailure(m.message_id, failed.get("Code", ""), failed.get("Message", "")))
    return failures


def send(session: AccountSession, *, url: str, bodies: Sequence[str]) -> int:
    """Put messages on a queue (ten per call): the simulated world and the benchmark inject events with it."""
    client = session.client("sqs")
    for i in range(0, len(bodies), BATCH):
        call(
            client,
            "send_message_batch",
            retry=session.retry,
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[i : i + BATCH])],
        )
    return len(bodies)
