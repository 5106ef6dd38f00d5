"""The settings a user types, checked before any request: the token travels only to Kustomer, and a
wrong value is said as such, with what to write instead.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.validators.validation_strategy import ValidationStrategy
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets, filter_secrets
from airbyte_cdk.utils.datetime_helpers import ab_datetime_parse
from airbyte_cdk.utils.traced_exception import AirbyteTracedException


_HOST = re.compile(r"^[a-z0-9.-]+$")
_LOOPBACK = {"localhost", "127.0.0.1"}


def config_error(message: str) -> AirbyteTracedException:
    """A setting the user must fix: said as it is, and marked as a config error (no retry helps)."""
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)


@dataclass
class KustomerHostValidator(ValidationStrategy):
    """The API token may travel only to Kustomer: https on kustomerapp.com, or loopback for the sandbox.

    ``api_url`` is free text, so it is checked before any request is built: userinfo tricks
    (``https://api.kustomerapp.com@evil.example``), look-alike or non-ASCII hosts, other schemes and
    any other host are refused with a message that says what is accepted.
    """

    def validate(self, value: Any) -> None:
        parts = urlsplit(str(value or ""))
        host = (parts.hostname or "").rstrip(".")
        kustomer = parts.scheme == "https" and (host == "kustomerapp.com" or host.endswith(".kustomerapp.com"))
        loopback = parts.scheme in ("http", "https") and host in _LOOPBACK
        clean = (
            _HOST.match(host) is not None
            and "@" not in parts.netloc
            and parts.path in ("", "/")
            and not parts.query
            and not parts.fragment
            and (loopback or parts.port in (None, 443))
        )
        if not (clean and (kustomer or loopback)):
            raise config_error(
                f"The API URL '{value}' is not a Kustomer API host. Use https://api.kustomerapp.com, "
                "https://api.prod2.kustomerapp.com or https://<org>.api.kustomerapp.com (or leave "
                "api_url empty and pick a region); only http://localhost or http://127.0.0.1 are "
                "accepted besides, for a local sandbox. The API token is never sent anywhere else."
            )


@dataclass
class ApiTokenValidator(ValidationStrategy):
    """The API token: an empty one would only earn a 401 from Kustomer, so say what is missing instead;
    and the key, as it is sent (trimmed: a key is often pasted with a space or a newline around it),
    is masked in every output of the command from here on.

    CDK limit: the CDK masks the config's ``airbyte_secret`` values as written, and only once its
    entrypoint runs a command. A key pasted with whitespace around it is masked with that whitespace
    only, so the requests logged at debug level and the Connector Builder's test reads (which show
    each request's headers) printed the trimmed key; and the Builder's handler builds the streams
    before its entrypoint starts, so a key Kustomer refused while they were built (the Klass list of
    the dynamic streams) was quoted whole in "Error reading stream with config={...}". The CDK runs
    the manifest's config validations each time it builds the streams, in every runtime (the package,
    ``source-declarative-manifest``, the Builder's handler and its manifest server, PyAirbyte's
    ``source_manifest``), before any request: the one place every runtime passes with the key in hand.
    """

    def validate(self, value: Any) -> None:
        token = str(value or "").strip()
        if not token:
            raise config_error(
                "The API token (api_token) is empty. Paste the token of a Kustomer API key "
                "(Settings > Security > API Keys)."
            )
        if filter_secrets(token) != "****":  # not masked yet (the entrypoint replaces the list per command)
            add_to_secrets(token)


@dataclass
class UtcDateTimeValidator(ValidationStrategy):
    """``start_date`` must be a real UTC instant: the spec's pattern lets 2024-02-31T00:00:00Z through."""

    def validate(self, value: Any) -> None:
        try:
            ab_datetime_parse(str(value))
            datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise config_error(
                f"The start date '{value}' is not a valid UTC date-time. Write it as YYYY-MM-DDTHH:MM:SSZ, "
                "for example 2024-01-01T00:00:00Z, or leave it empty to replicate all history."
            ) from None
