"""source_kustomer/settings.py on its own: the validators of the settings a user types (the API host,
the token, the start date) and the config error they raise. The same settings refused by ``check``
through the manifest are test_check_config.py's."""

from __future__ import annotations

import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.settings import ApiTokenValidator, KustomerHostValidator, UtcDateTimeValidator, config_error


def test_a_config_error_says_the_message_as_it_is_and_asks_for_no_retry():
    error = config_error("Set the region.")

    assert isinstance(error, AirbyteTracedException)
    assert (error.message, error.internal_message, error.failure_type) == ("Set the region.", "Set the region.", FailureType.config_error)


@pytest.mark.parametrize(
    "url",
    ["https://api.kustomerapp.com", "https://api.prod2.kustomerapp.com/", "https://acme.api.kustomerapp.com", "http://127.0.0.1:8080", "http://localhost:1"],
)
def test_kustomer_and_loopback_hosts_pass(url):
    KustomerHostValidator().validate(url)


@pytest.mark.parametrize("url", ["https://api.kustomerapp.com@evil.example", "http://api.kustomerapp.com", "https://evil.example", "", None])
def test_other_hosts_are_refused(url):
    with pytest.raises(AirbyteTracedException, match="not a Kustomer API host"):
        KustomerHostValidator().validate(url)


@pytest.mark.parametrize(
    "url",
    ["https://api.kustomerapp.com/v1", "https://api.kustomerapp.com?x=1", "https://api.kustomerapp.com#top", "https://api.kustomerapp.com:8443",
     "https://api.kustomerаpp.com", "ftp://api.kustomerapp.com", "https://kustomerapp.com.evil.example"],
)
def test_paths_queries_ports_look_alikes_and_other_schemes_are_refused_as_config_errors(url):
    with pytest.raises(AirbyteTracedException) as error:
        KustomerHostValidator().validate(url)

    assert error.value.failure_type == FailureType.config_error and "The API token is never sent anywhere else" in error.value.message


def test_start_date_must_be_a_real_utc_instant():
    UtcDateTimeValidator().validate("2024-02-29T00:00:00Z")
    with pytest.raises(AirbyteTracedException, match="YYYY-MM-DDTHH:MM:SSZ"):
        UtcDateTimeValidator().validate("2023-02-29T00:00:00Z")


@pytest.mark.parametrize("value", ["2024-01-01", "2024-01-01T00:00:00", "2024-01-01T00:00:00+02:00", "2024-01-01T00:00:00.000Z", "soon"])
def test_a_start_date_in_any_other_form_is_refused_saying_the_form(value):
    with pytest.raises(AirbyteTracedException) as error:
        UtcDateTimeValidator().validate(value)

    assert error.value.failure_type == FailureType.config_error and f"The start date '{value}' is not a valid UTC date-time" in error.value.message


def test_blank_token_is_refused():
    with pytest.raises(AirbyteTracedException, match="api_token"):
        ApiTokenValidator().validate("  \n")


def test_a_token_passes():
    ApiTokenValidator().validate("any-token-text")
