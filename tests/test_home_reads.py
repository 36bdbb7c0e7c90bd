"""The reads App Home, `/sms status` and `/sms scheduled` share (services/home.py, services/summary.py
`RequestLookup`), driven directly over a real store: typed values, and one read for both scheduled lists."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.home import HomeReads, PendingRequests
from services.summary import RequestLookup, RequestStatus, RequestSummary
from storage import RequestState, SendRequest, Store
from storage.models import KeptReport

NOW = 1_800_000_000.0
AMY, BEN = "+886912345678", "+886922333444"


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    store = Store(tmp_path / "bot.db")
    yield store
    store.close()


def make_request(store: Store, message: str = "hi", *, state: RequestState | None = None,
                 send_at: float | None = None, now: float = NOW) -> int:
    request_id = store.requests.create(
        dict(requester="U_A", origin_channel="C_A", kind="sms", message=message, validity_minutes=1440,
             recipient_count=2, taiwan_count=2, international_count=0, chars=len(message), parts=1, points=2,
             approval_channel="C_APPROVALS", send_at=send_at, now=now), [AMY, BEN])
    if state is not None:
        store.requests.update(request_id, state=state.value)
    return request_id


def make_batch(store: Store, batch_id: str, request_id: int, *, at: float) -> None:
    store.batches.create(batch_id=batch_id, request_id=request_id, kind="sms", send_at=None, validity_until=at + 86400,
                         first_poll_at=at, initial_status=0, recipients=[AMY, BEN], now=at)


def test_pending_counts_all_and_lists_the_oldest_first(store):
    ids = [make_request(store, f"m{i}") for i in range(4)]
    make_request(store, "sent", state=RequestState.SENT)
    pending = HomeReads(store).pending(2)
    assert isinstance(pending, PendingRequests)
    assert pending.total == 4
    assert [r.id for r in pending.requests] == ids[:2]
    assert all(isinstance(r, SendRequest) for r in pending.requests)


def test_recent_is_one_summary_per_request_newest_first_over_all_its_parts(store):
    first = make_request(store, "first", state=RequestState.SENT)
    second = make_request(store, "second", state=RequestState.SENT)
    make_batch(store, "B-1", first, at=NOW + 1)
    make_batch(store, "B-2a", second, at=NOW + 2)
    make_batch(store, "B-2b", second, at=NOW + 3)
    recent = HomeReads(store).recent(10)
    assert [s.request.id for s in recent] == [second, first]
    assert all(isinstance(s, RequestSummary) for s in recent)
    assert recent[0].batch_ids == ["B-2a", "B-2b"] and recent[0].lead.batch_id == "B-2a"
    assert sum(recent[0].counts.values()) == 4  # both parts counted together
    assert [s.request.id for s in HomeReads(store).recent(1)] == [second]


def test_kept_reports_are_typed_and_newest_first(store):
    store.replies.keep_unmatched_report(batch_id="X-1", status_code=100, mobile=AMY, now=NOW)
    store.replies.keep_unmatched_report(batch_id="X-2", status_code=101, mobile=BEN, now=NOW + 1)
    kept = HomeReads(store).kept_reports(10)
    assert [k.batch_id for k in kept] == ["X-2", "X-1"]
    assert all(isinstance(k, KeptReport) for k in kept)
    assert [k.batch_id for k in HomeReads(store).kept_reports(1)] == ["X-2"]


@pytest.mark.parametrize("ref", ["#2", "2", "R2", "r2", "#R2"])
def test_a_request_is_found_by_its_number_however_it_is_typed(store, ref):
    make_request(store, "one")
    two = make_request(store, "two")
    found = RequestLookup(store, lambda: NOW).find(ref)
    assert found is not None and found.id == two and found.message == "two"


def test_a_request_is_found_by_any_of_its_batch_ids_and_nothing_for_unknown_refs(store):
    request_id = make_request(store, state=RequestState.SENT)
    make_batch(store, "B-1", request_id, at=NOW)
    make_batch(store, "B-2", request_id, at=NOW + 1)
    lookup = RequestLookup(store, lambda: NOW)
    assert lookup.find("B-2").id == request_id  # type: ignore[union-attr]
    assert [b.batch_id for b in lookup.batches(request_id)] == ["B-1", "B-2"]
    assert lookup.find("#99") is None and lookup.find("no-such-batch") is None
    summary = lookup.summary(request_id)
    assert summary is not None and summary.batch_ids == ["B-1", "B-2"]
    assert lookup.summary(make_request(store)) is None  # no batch yet: no summary


def test_scheduled_is_what_is_still_to_go_by_the_services_clock(store):
    now = [NOW]
    soon = make_request(store, "soon", state=RequestState.SENT, send_at=NOW + 60)
    later = make_request(store, "later", state=RequestState.SENT, send_at=NOW + 3600)
    make_request(store, "waiting", send_at=NOW + 60)  # not accepted by EVERY8D yet: nothing to cancel
    make_request(store, "gone", state=RequestState.SENT, send_at=NOW - 1)
    lookup = RequestLookup(store, lambda: now[0])
    assert [r.id for r in lookup.scheduled()] == [soon, later]
    now[0] = NOW + 61
    assert [r.id for r in lookup.scheduled()] == [later]


def test_status_reads_open_batches_live_then_summarises_and_survives_an_unreachable_platform(store):
    request_id = make_request(store, state=RequestState.SENT)
    for n in range(3):
        make_batch(store, f"B-{n}", request_id, at=NOW + n)
    store.batches.complete("B-0", NOW + 5)
    polled: list[str] = []
    lookup = RequestLookup(store, lambda: NOW, poll=lambda batch: polled.append(batch.batch_id))
    found = lookup.status(f"#{request_id}", live_polls=1)
    assert found is not None and found.request.id == request_id
    assert polled == ["B-1"]  # only open batches, at most live_polls of them
    assert found.summary is not None and found.summary.batch_ids == ["B-0", "B-1", "B-2"]

    def unreachable(batch):
        raise ConnectionError("EVERY8D did not answer")

    stored = RequestLookup(store, lambda: NOW, poll=unreachable).status("B-2")
    assert stored is not None and stored.summary == found.summary  # what is stored, no error

    waiting = make_request(store, "not yet")
    assert lookup.status(f"R{waiting}") == RequestStatus(store.requests.get(waiting), None)  # state only
    assert lookup.status("#404") is None and polled == ["B-1"]
