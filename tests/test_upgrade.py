"""Upgrading keeps what a deployment already holds: opening a database written by the previous release
applies the new migrations, and the requests in it keep working (sent ones stay tracked and cancellable,
approved ones are sent once, unknown ones can still be settled)."""

from __future__ import annotations

import time

from sqlite_utils import Database

from storage import PartState, RequestState, Store
from storage.schema import MIGRATIONS


def old_database(path) -> None:
    """A database as the release before request parts left it: one sent, one approved, one unknown."""
    db = Database(path)
    MIGRATIONS.apply(db, stop_before="0006_request_parts")
    now = time.time()
    base = {"created_at": now, "updated_at": now, "requester": "U_REQUESTER", "origin_channel": "C_GENERAL",
            "kind": "sms", "message": "舊的申請", "validity_minutes": 1440, "recipient_count": 2, "taiwan_count": 2,
            "international_count": 0, "chars": 4, "parts": 1, "points": 2.0, "approval_channel": "C_APPROVALS",
            "batch_id": None, "sent_count": None, "cost": None, "send_attempts": 0}
    db["requests"].insert_all([
        {**base, "id": 1, "state": "sent", "batch_id": "OLD-BATCH", "sent_count": 2, "cost": 2.0, "send_attempts": 1},
        {**base, "id": 2, "state": "approved"},
        {**base, "id": 3, "state": "unknown", "send_attempts": 1},
    ])
    db["request_recipients"].insert_all(
        {"request_id": r, "position": i, "e164": n, "name": ""}
        for r in (1, 2, 3) for i, n in enumerate(("+886912345678", "+886922333444")))
    db["batches"].insert({"batch_id": "OLD-BATCH", "request_id": 1, "kind": "sms", "created_at": now,
                          "validity_until": now + 86400, "next_poll_at": now})
    db.conn.close()


def test_requests_from_the_previous_release_become_one_part_each(tmp_path):
    path = tmp_path / "bot.db"
    old_database(path)
    store = Store(path)
    sent, approved, unknown = (store.parts.of_request(i) for i in (1, 2, 3))
    assert [(p.state, p.batch_id, p.first_position, p.last_position) for p in sent] == [
        (PartState.SENT, "OLD-BATCH", 0, 1)]
    assert [p.state for p in approved] == [PartState.PENDING]
    assert [p.state for p in unknown] == [PartState.UNKNOWN]
    assert store.requests.by_batch("OLD-BATCH").id == 1
    assert store.requests.get(2).state is RequestState.APPROVED
    assert store.parts.recipients(approved[0]) == ["+886912345678", "+886922333444"]
    store.close()


def test_an_approved_request_from_the_previous_release_is_sent_once_and_an_unknown_one_can_be_settled(tmp_path):
    from every8d.client import Every8dClient
    from every8d.sandbox import Sandbox
    from services.approval import ApprovalService
    from services.policy import Policy
    from services.sending import SendService

    path = tmp_path / "bot.db"
    old_database(path)
    store = Store(path)
    policy = Policy(approver_users=frozenset({"U_APPROVER"}))
    with Sandbox(delivery_seconds=60) as sandbox:
        client = Every8dClient(sandbox.base_url, "sandbox", "sandbox")
        sender = SendService(store, client, policy, time.time)
        assert sender.recover() == [2]
        assert sender.send(2) is RequestState.SENT
        assert sender.send(2) is None  # already sent: a second call sends nothing
        assert len([c for c in sandbox.calls if c.endpoint.endswith("sendSMS.ashx")]) == 1
        client.close()
    started: list[int] = []
    decision = ApprovalService(store, policy, time.time, started.append).resolve_unknown(3, "U_APPROVER", resend=False)
    assert decision.verdict == "marked_sent" and store.requests.get(3).state is RequestState.SENT and started == []
    store.close()
