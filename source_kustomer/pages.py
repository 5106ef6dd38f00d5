"""Reading a Kustomer page: its JSON parsed once for every component that reads it, its records
found without walking the page.

- ``parsed_body`` parses a response once (orjson, and the standard library for what orjson refuses).
- ``ParsedOnceDecoder`` hands that parse to the record selector and the paginator.
- ``RecordsAtExtractor`` takes the records at a plain key path.
"""

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Generator, Iterable, Mapping, MutableMapping, Optional

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.decoders import JsonDecoder
from airbyte_cdk.sources.declarative.extractors.dpath_extractor import DpathExtractor
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.records import value_at

logger = logging.getLogger("airbyte")

NOT_JSON = object()


def parsed_body(response: requests.Response) -> Any:
    """The response's JSON body, parsed once and kept on the response (``NOT_JSON`` if it is not JSON)."""
    body = response.__dict__.get("_parsed_body")
    if body is None:
        try:
            body = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            body = _parsed_leniently(response.content)
        response.__dict__["_parsed_body"] = body
    return body


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _parsed_leniently(content: bytes) -> Any:
    """What orjson refused, parsed by the standard library; ``NOT_JSON`` if that fails too.

    A Kustomer text cut short in the middle of an emoji (a preview, a truncated body) reaches the page
    as half of a surrogate pair, ``"\\ud83d"``: valid JSON, which orjson refuses, so one character
    would cost the whole page and fail the sync. Such a half, which no UTF-8 output can carry (orjson
    would refuse to write the record too), becomes U+FFFD, the replacement character, as do bytes
    that are not UTF-8. Pages orjson reads, nearly all, never come here.
    """
    try:
        return _without_lone_surrogates(json.loads(content.decode("utf-8", "replace")))
    except (ValueError, RecursionError):
        return NOT_JSON


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with every half surrogate pair in its strings and keys replaced by U+FFFD (json.loads
    joins the halves that do pair, so any left is alone)."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_lone_surrogates(key): _without_lone_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    return value


class ParsedOnceDecoder(JsonDecoder):
    """Parses each Kustomer page once, however many components read it, and never shrugs off bad JSON.

    A search page is about 2 MB of JSON; the error handler, the record selector and the paginator
    all read it, and parsing it for each cost a quarter of the connector's CPU. The CDK's
    ``JsonDecoder`` also turns a body that is not JSON into ``{}``, an empty page that would end the
    stream early without a word: such a page is retried (``errors.KustomerErrorHandler``), and one that gets
    here anyway fails the sync with a clear error.
    """

    def __init__(self, parameters: Optional[Mapping[str, Any]] = None, **_: Any) -> None:
        super().__init__(parameters or {})

    def decode(self, response: requests.Response) -> Generator[MutableMapping[str, Any], None, None]:
        body = parsed_body(response)
        if body is NOT_JSON:
            raise AirbyteTracedException(
                message="Kustomer sent a page that is not valid JSON, so its records cannot be read. Run the sync again.",
                internal_message=f"Invalid JSON from {response.request.method if response.request else ''} {response.url}",
                failure_type=FailureType.transient_error,
            )
        yield body


@dataclass
class RecordsAtExtractor(DpathExtractor):
    """``DpathExtractor`` that looks a plain key path up directly.

    Kustomer's pages are large (a 500-conversation search page is about 2 MB of JSON), and
    ``dpath.get`` finds even a top-level key by walking every leaf of the page: 100 ms per such page,
    more than parsing it. A path of plain keys is followed key by key instead; wildcards still go
    through dpath. An item of the list that is not an object (a null in ``data``) is skipped with a
    warning instead of stopping the stream.
    """

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._path = [InterpolatedString.create(str(key), parameters=parameters) for key in self.field_path]
        self._stream_parameters = parameters

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        path = [key.eval(self.config) for key in self._path]
        if "*" in path or self.record_expander is not None:
            yield from super().extract_records(response)
            return
        for body in self.decoder.decode(response):
            found = value_at(body, path) if path else body
            if isinstance(found, list):
                for item in found:
                    if isinstance(item, dict):
                        yield item
                    else:  # JSON:API resources are objects; anything else cannot become a row
                        logger.warning(f"Skipped an item of '{'.'.join(path)}' that is not an object: {str(item)[:80]!r}")
            elif found:
                yield found
