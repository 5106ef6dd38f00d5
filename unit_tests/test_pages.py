"""source_kustomer/pages.py on its own: a page's JSON parsed once (parsed_body, ParsedOnceDecoder), leniently
where one character would cost the page, and its records found at a plain key path (RecordsAtExtractor)."""

from __future__ import annotations

import json
import logging
from typing import Dict, Optional

import pytest
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.pages import NOT_JSON, ParsedOnceDecoder, RecordsAtExtractor, parsed_body


def answer(body: bytes, status: int = 200, method: str = "GET", url: str = "https://api.kustomerapp.com/v1/users",
           headers: Optional[Dict[str, str]] = None) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.url = status, body, url
    response.headers.update(headers or {})
    response.request = requests.Request(method, url).prepare()
    return response


# --- parsed_body -----------------------------------------------------------------------------------


def test_parsed_body_parses_a_page_once_and_keeps_it_on_the_response(monkeypatch):
    page = answer(b'{"data": [{"id": "a"}]}')
    first = parsed_body(page)
    monkeypatch.setattr("source_kustomer.pages.orjson.loads", lambda _: pytest.fail("parsed twice"))

    assert first == {"data": [{"id": "a"}]} and parsed_body(page) is first


def test_an_empty_body_is_an_empty_page():
    assert parsed_body(answer(b"")) == {}


@pytest.mark.parametrize("body", [b'{"data": [{"id": "a"}', b"<html>502</html>", b'{"data": [] garbled}'])
def test_a_body_that_is_not_json_is_not_json(body):
    assert parsed_body(answer(body)) is NOT_JSON


def test_half_a_surrogate_pair_which_orjson_refuses_becomes_a_replacement_character_in_values_and_keys():
    page = answer(b'{"data": [{"name": "cut \\ud83d", "k\\udbff": ["\\ude00"], "whole": "\\ud83d\\ude00"}]}')

    assert parsed_body(page) == {"data": [{"name": "cut \ufffd", "k\ufffd": ["\ufffd"], "whole": "\U0001f600"}]}


def test_bytes_that_are_not_utf8_become_replacement_characters():
    assert parsed_body(answer(b'{"name": "cut \xf0\x9f\x98"}')) == {"name": "cut \ufffd"}


# --- ParsedOnceDecoder -----------------------------------------------------------------------------


def test_a_page_is_parsed_once_however_many_components_read_it(monkeypatch):
    page = answer(json.dumps({"data": [{"id": "a"}], "links": {"next": None}}).encode())
    decoder = ParsedOnceDecoder()
    first = next(decoder.decode(page))
    monkeypatch.setattr("source_kustomer.pages.orjson.loads", lambda _: pytest.fail("parsed twice"))

    assert next(decoder.decode(page)) is first


def test_a_body_that_is_not_json_fails_loudly_instead_of_reading_as_an_empty_page():
    with pytest.raises(AirbyteTracedException) as error:
        next(ParsedOnceDecoder().decode(answer(b'{"data": [{"id": "a"}, garbled}')))

    assert "not valid JSON" in error.value.message and error.value.failure_type == FailureType.transient_error
    assert error.value.internal_message == "Invalid JSON from GET https://api.kustomerapp.com/v1/users"


# --- RecordsAtExtractor ----------------------------------------------------------------------------


@pytest.mark.parametrize("path,expected", [(["data"], [{"id": "a"}, {"id": "b"}]), (["included"], [{"id": "i"}]), (["meta"], [{"n": 1}]), (["nothing"], [])])
def test_records_at_extractor_follows_plain_keys(path, expected):
    page = answer(json.dumps({"data": [{"id": "a"}, {"id": "b"}], "included": [{"id": "i"}], "meta": {"n": 1}}).encode())
    extractor = RecordsAtExtractor(field_path=path, config={}, parameters={}, decoder=ParsedOnceDecoder())

    assert list(extractor.extract_records(page)) == expected


def test_records_at_extractor_does_not_walk_the_page(monkeypatch):
    monkeypatch.setattr("dpath.get", lambda *_a, **_k: pytest.fail("dpath walked the page"))
    page = answer(json.dumps({"data": [{"id": "a", "attributes": {"deep": {"er": [1, 2, 3]}}}]}).encode())

    assert [r["id"] for r in RecordsAtExtractor(field_path=["data"], config={}, parameters={}).extract_records(page)] == ["a"]


def test_records_at_extractor_evaluates_an_interpolated_key():
    page = answer(json.dumps({"data": [{"id": "a"}], "included": [{"id": "i"}]}).encode())
    extractor = RecordsAtExtractor(field_path=["{{ parameters.get('records_at', 'data') }}"], config={}, parameters={"records_at": "included"})

    assert list(extractor.extract_records(page)) == [{"id": "i"}]


def test_an_empty_path_takes_the_whole_page_as_the_record():
    page = answer(b'{"data": [{"id": "a"}], "links": {"next": null}}')

    assert list(RecordsAtExtractor(field_path=[], config={}, parameters={}).extract_records(page)) == [
        {"data": [{"id": "a"}], "links": {"next": None}}]


def test_a_wildcard_path_is_still_read_by_dpath(monkeypatch):
    import dpath

    walked = []
    values = dpath.values
    monkeypatch.setattr(dpath, "values", lambda *args, **kwargs: walked.append(args[1]) or values(*args, **kwargs))
    page = answer(json.dumps({"data": [{"id": "a"}, {"id": "b"}]}).encode())

    assert [r["id"] for r in RecordsAtExtractor(field_path=["data", "*"], config={}, parameters={}).extract_records(page)] == ["a", "b"]
    assert walked == [["data", "*"]]


def test_an_item_that_is_not_an_object_is_skipped_with_a_warning(caplog):
    page = answer(b'{"data": [{"id": "a"}, null, 7, {"id": "b"}]}')

    with caplog.at_level(logging.WARNING, logger="airbyte"):
        found = list(RecordsAtExtractor(field_path=["data"], config={}, parameters={}).extract_records(page))

    assert found == [{"id": "a"}, {"id": "b"}]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["Skipped an item of 'data' that is not an object: 'None'", "Skipped an item of 'data' that is not an object: '7'"]
