"""source_kustomer/shared_pages.py on its own: the pages of a sync (PageStore, one per sync_started_at),
the Requester methods a wrapper delegates (RequesterFacade), and a request asked twice in one sync sent
to Kustomer once (SharedPagesRequester, around a fake requester)."""

from __future__ import annotations

import json
import os
import zlib
import threading
from typing import Any, Dict, List, Optional

import requests
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import NoAuth
from airbyte_cdk.sources.declarative.requesters.requester import HttpMethod

from source_kustomer.shared_pages import PageStore, RequesterFacade, SharedPagesRequester

SEARCH_URL = "https://api.kustomerapp.com/v1/customers/search"


def kustomer_answer(body: Any, status: int = 200, url: str = SEARCH_URL, request_body: Optional[bytes] = b'{"queryContext": "customer"}',
                    headers: Optional[Dict[str, str]] = None) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.url = status, json.dumps(body).encode(), url
    response.headers.update(headers or {})
    response.request = requests.Request("POST", url, data=request_body).prepare()
    return response


# --- PageStore -------------------------------------------------------------------------------------


def test_a_sync_keeps_one_store_and_a_new_sync_gets_a_new_empty_one():
    store = PageStore.of_sync({"sync_started_at": "2032-01-01T00:00:00.000001Z"})
    store.put("key", kustomer_answer({"data": [1]}))

    assert PageStore.of_sync({"sync_started_at": "2032-01-01T00:00:00.000001Z", "page_size": 3}) is store
    next_sync = PageStore.of_sync({"sync_started_at": "2032-01-01T00:00:00.000002Z"})
    assert next_sync is not store and next_sync.get("key") is None
    assert store.get("key").json() == {"data": [1]}  # the earlier sync's requesters still read their own


def test_a_stored_page_comes_back_with_its_status_url_request_and_content_type_only():
    store = PageStore()
    store.put("k", kustomer_answer({"data": ["a"]}, status=404, headers={"Content-Type": "application/json", "x-ratelimit-remaining": "3"}))

    page = store.get("k")

    assert (page.status_code, page.url, page.json()) == (404, SEARCH_URL, {"data": ["a"]})
    assert dict(page.headers) == {"Content-Type": "application/json"}  # a rate-limit header of then says nothing now
    assert (page.request.method, page.request.url, page.request.body) == ("POST", SEARCH_URL, b'{"queryContext": "customer"}')
    assert store.get("another key") is None


def test_a_key_is_stored_once_the_last_answer_wins():
    store = PageStore()
    store.put("k", kustomer_answer({"n": 1}))
    store.put("k", kustomer_answer({"n": 2}))

    assert store.get("k").json() == {"n": 2}


def test_the_store_keeps_its_pages_under_its_bound_and_the_oldest_go_first():
    pages = [kustomer_answer({"data": [os.urandom(2000).hex()]}) for _ in range(10)]  # random: no compression
    # random hex compresses to about half, a few bytes more or less per page: the bound fits three of the largest
    size = max(len(f"k{n}") + len(zlib.compress(page.content, 1)) + len(page.request.body) for n, page in enumerate(pages))
    store = PageStore(max_bytes=3 * size)

    for n, page in enumerate(pages):
        store.put(f"k{n}", page)
        assert store.stored_bytes <= 3 * size

    assert [store.get(f"k{n}") is not None for n in range(10)] == [False] * 7 + [True] * 3
    assert store.get("k9").json() == pages[9].json()
    assert os.path.getsize(os.path.join(store._directory.name, "pages.sqlite")) < 20 * size  # freed space is reused


def test_pages_are_kept_compressed():
    page = kustomer_answer({"data": [{"type": "customer", "attributes": {"name": "Ada"}}] * 500})
    store = PageStore()
    store.put("k", page)

    assert store.stored_bytes < len(page.content) / 20 and store.get("k").content == page.content


def test_a_page_larger_than_the_bound_is_still_kept_until_the_next_one():
    store = PageStore(max_bytes=10)
    store.put("a", kustomer_answer({"data": [1]}))
    assert store.get("a") is not None
    store.put("b", kustomer_answer({"data": [2]}))
    assert store.get("a") is None and store.get("b").json() == {"data": [2]}


def test_by_default_a_sync_keeps_at_most_64_mb_of_pages():
    assert PageStore().max_bytes == 64 * 2**20


def test_each_key_has_one_lock_for_the_threads_that_fetch_it():
    store = PageStore()

    assert store.key_lock("a") is store.key_lock("a") and store.key_lock("a") is not store.key_lock("b")


# --- RequesterFacade ---------------------------------------------------------------------------------


class Wrapped:
    def get_authenticator(self):
        return "the authenticator"

    def get_method(self):
        return HttpMethod.POST

    def __getattr__(self, name: str):
        return lambda **kwargs: (name, kwargs)


class Delegating(RequesterFacade):
    def __init__(self, requester: Any = None) -> None:
        if requester is not None:
            self.requester = requester

    def send_request(self, **_: Any) -> None:
        return None


def test_the_facade_delegates_every_requester_method_to_the_wrapped_one():
    facade = Delegating(Wrapped())

    assert (facade.get_authenticator(), facade.get_method()) == ("the authenticator", HttpMethod.POST)
    for method in ("get_url", "get_url_base", "get_path", "get_request_params", "get_request_headers", "get_request_body_data", "get_request_body_json"):
        assert getattr(facade, method)(stream_slice={"s": 1}) == (method, {"stream_slice": {"s": 1}})


def test_without_a_wrapped_requester_the_facade_is_empty():
    facade = Delegating()

    assert isinstance(facade.get_authenticator(), NoAuth) and facade.get_method() == HttpMethod.GET
    assert (facade.get_url(), facade.get_url_base(), facade.get_path()) == ("", "", "")
    assert facade.get_request_params() == facade.get_request_headers() == facade.get_request_body_data() == facade.get_request_body_json() == {}


# --- SharedPagesRequester ----------------------------------------------------------------------------


class Requester:
    """A search requester: asks per window, answers with the number of requests sent so far."""

    def __init__(self, statuses: Optional[List[int]] = None) -> None:
        self.calls, self.statuses, self.sent = 0, statuses or [], []

    def get_url_base(self, **_: Any) -> str:
        return "https://api.kustomerapp.com"

    def get_path(self, **_: Any) -> str:
        return "/v1/customers/search"

    def get_url(self, **_: Any) -> str:
        return self.get_url_base() + self.get_path()

    def get_request_params(self, **_: Any) -> Dict[str, Any]:
        return {"page": 1}

    def get_request_body_json(self, stream_slice=None, **_: Any) -> Dict[str, Any]:
        return {"queryContext": "customer", "window": stream_slice["start_time"]}

    def send_request(self, stream_slice=None, **kwargs: Any) -> requests.Response:
        self.calls += 1
        self.sent.append(kwargs)
        status = self.statuses[self.calls - 1] if self.calls <= len(self.statuses) else 200
        return kustomer_answer({"data": [self.calls]}, status=status, url=self.get_url())


def shared(requester: Requester, sync: str = "2025-06-01T00:00:00.000000Z") -> SharedPagesRequester:
    return SharedPagesRequester(requester=requester, parameters={}, config={"sync_started_at": sync})


def test_shared_pages_requester_sends_a_repeated_request_once_per_sync():
    requester = Requester()
    pages = shared(requester)
    window = {"start_time": "2025"}
    assert pages.send_request(stream_slice=window).json() == {"data": [1]}
    assert pages.send_request(stream_slice=window).json() == {"data": [1]}  # from the store
    assert pages.send_request(stream_slice={"start_time": "2026"}).json() == {"data": [2]}  # another question
    assert shared(requester).send_request(stream_slice=window).json() == {"data": [1]}  # another stream of the sync
    next_sync = shared(requester, sync="2025-06-02T00:00:00.000000Z")
    assert next_sync.send_request(stream_slice=window).json() == {"data": [3]}  # a new sync asks again
    assert requester.calls == 3


def test_a_request_differing_in_its_page_params_or_path_is_another_question():
    requester = Requester()
    pages = shared(requester, sync="2025-06-03T00:00:00.000000Z")
    window = {"start_time": "2025"}

    pages.send_request(stream_slice=window)
    pages.send_request(stream_slice=window, request_params={"page": 2})
    pages.send_request(stream_slice=window, path="/v1/customers/archive/search")
    pages.send_request(stream_slice=window, request_body_json={"window": "other"})
    pages.send_request(stream_slice=window, request_params={"page": 2})

    assert requester.calls == 4
    assert requester.sent[1]["request_params"] == {"page": 2} and requester.sent[2]["path"] == "/v1/customers/archive/search"


def test_an_instant_read_again_on_purpose_is_asked_of_kustomer_again():
    requester = Requester()
    pages = shared(requester, sync="2025-06-04T00:00:00.000000Z")
    window = {"start_time": "2025"}
    token = {"next_page_token": {"updated_at": "t", "until": "t", "page": 1, "pass": 0}}

    pages.send_request(stream_slice=window, next_page_token=token)
    pages.send_request(stream_slice=window, next_page_token=token)
    pages.send_request(stream_slice=window, next_page_token={"next_page_token": {**token["next_page_token"], "pass": 1}})

    assert requester.calls == 2


def test_only_a_200_or_an_ignored_404_is_kept_a_failed_answer_is_asked_again():
    requester = Requester(statuses=[500, 404, 200])
    pages = shared(requester, sync="2025-06-05T00:00:00.000000Z")

    assert pages.send_request(stream_slice={"start_time": "a"}).status_code == 500
    assert pages.send_request(stream_slice={"start_time": "a"}).status_code == 404
    assert pages.send_request(stream_slice={"start_time": "a"}).status_code == 404  # kept
    assert requester.calls == 2


def test_threads_asking_the_same_question_at_once_send_it_once():
    requester = Requester()
    pages = shared(requester, sync="2025-06-06T00:00:00.000000Z")
    answers: List[Any] = []
    threads = [threading.Thread(target=lambda: answers.append(pages.send_request(stream_slice={"start_time": "x"}).json())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert requester.calls == 1 and answers == [{"data": [1]}] * 8
