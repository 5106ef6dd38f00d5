"""source_kustomer/lists.py: OneFilterAtATimeRetriever on its own (a fake inner retriever), and the users
stream it reads through the manifest (GET /v1/users once per status; Kustomer is the CDK's HttpMocker)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.sources.types import StreamSlice

from source_kustomer.lists import OneFilterAtATimeRetriever
from unit_tests.conftest import read_stream
from unit_tests.kustomer_mock import kustomer_record, list_page, list_request, object_id

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
STATUSES = [{"status": "pending", "params": {"pending": "true"}}, {"status": "deactivated", "params": {"deleted": "true"}},
            {"status": "active", "params": {"deleted": "false"}}]


class Lists:
    """A retriever answering each filter (its ``params`` in the slice's extra fields) with its list."""

    def __init__(self, answers: Mapping[str, List[Any]]) -> None:
        self.answers, self.slices = answers, []

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[Any]:
        self.slices.append(stream_slice)
        yield from self.answers[stream_slice.extra_fields["status"]]


def retriever(answers: Dict[str, List[Any]], filters: List[Dict[str, Any]] = STATUSES) -> OneFilterAtATimeRetriever:
    return OneFilterAtATimeRetriever(retriever=Lists(answers), config={}, parameters={}, filters=filters)


def test_each_filter_is_read_in_order_as_a_slice_of_its_own_keeping_the_slice_s_partition_and_cursor():
    users = retriever({"pending": [{"id": "u1"}], "deactivated": [{"id": "u2"}], "active": [{"id": "u3"}]})
    given = StreamSlice(partition={"p": 1}, cursor_slice={"start_time": "s"}, extra_fields={"kept": True})

    assert [r["id"] for r in users.read_records({}, given)] == ["u1", "u2", "u3"]
    slices = users.retriever.slices
    assert [s.extra_fields for s in slices] == [{"kept": True, **f} for f in STATUSES]
    assert all(s.partition == {"p": 1} and s.cursor_slice == {"start_time": "s"} for s in slices)


def test_an_object_an_earlier_filter_returned_is_not_emitted_again():
    users = retriever({"pending": [{"id": "u1"}], "deactivated": [{"id": "u2"}, {"id": "u1"}], "active": [{"id": "u3"}, {"id": "u2"}]})

    assert [r["id"] for r in users.read_records({}, None)] == ["u1", "u2", "u3"]


def test_objects_without_an_id_are_all_emitted():
    users = retriever({"pending": [{"name": "a"}], "deactivated": [{"name": "a"}], "active": [{"id": None}, "not a mapping"]})

    assert list(users.read_records({}, None)) == [{"name": "a"}, {"name": "a"}, {"id": None}, "not a mapping"]


def test_without_a_slice_the_filters_are_read_on_an_empty_one():
    users = retriever({"pending": [], "deactivated": [], "active": [{"id": "u3"}]})

    assert [r["id"] for r in users.read_records({})] == ["u3"]
    assert [(s.partition, s.cursor_slice) for s in users.retriever.slices] == [({}, {})] * 3


def test_at_least_one_filter_is_required():
    with pytest.raises(ValueError, match="needs at least one filter"):
        retriever({}, filters=[])


# --- through the manifest: the users stream ------------------------------------------------------


def test_users_are_read_one_status_at_a_time_each_user_once_with_its_status(http_mocker):
    def users(*numbers: int):
        return list_page([kustomer_record("user", n, T0) for n in numbers])

    pending = list_request("users", pending="true", pageSize=500)
    deactivated = list_request("users", deleted="true", pageSize=500)
    active = list_request("users", deleted="false", pageSize=500)
    http_mocker.get(pending, users(1))
    http_mocker.get(deactivated, users(2))
    http_mocker.get(active, users(1, 3))  # lists the pending one too

    output = read_stream("users", sync_mode=SyncMode.full_refresh)

    assert [(m.record.data["id"], m.record.data["status"]) for m in output.records] == [
        (object_id(1), "pending"), (object_id(2), "deactivated"), (object_id(3), "active")]
    for request in (pending, deactivated, active):  # each filter alone, never combined
        http_mocker.assert_number_of_calls(request, 1)
