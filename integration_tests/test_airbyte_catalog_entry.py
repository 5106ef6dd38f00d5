"""What Airbyte's catalog needs besides the code: metadata.yaml valid against Airbyte's own metadata
model, the docs page in Airbyte's section order, and acceptance-test-config.yml with only the keys the
current CDK reads."""

from __future__ import annotations

import re
import tomllib
import uuid
from pathlib import Path

import yaml
from airbyte_cdk.test.models.scenario import SCENARIO_SECTIONS, entry_key_problems
from airbyte_connector_models.metadata.v0.connector_metadata_definition_v0 import ConnectorMetadataDefinitionV0

REPO = Path(__file__).resolve().parent.parent
METADATA = yaml.safe_load((REPO / "metadata.yaml").read_text())
DOCS = (REPO / "docs" / "integrations" / "sources" / "kustomer.md").read_text()


def test_metadata_validates_against_airbyte_connector_models():
    ConnectorMetadataDefinitionV0.model_validate(METADATA)  # extra keys are forbidden: a typo fails here


def test_metadata_says_what_the_catalog_and_the_platform_need():
    data = METADATA["data"]
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]

    assert data["dockerImageTag"] == version
    assert uuid.UUID(data["definitionId"]).version == 4
    assert {"language:python", "cdk:low-code"} <= set(data["tags"])
    assert data["connectorType"] == "source" and data["dockerRepository"] == "airbyte/source-kustomer"
    assert set(data["allowedHosts"]["hosts"]) >= {"api.kustomerapp.com", "api.prod2.kustomerapp.com", "*.api.kustomerapp.com"}
    assert data["remoteRegistries"]["pypi"] == {"enabled": True, "packageName": "airbyte-source-kustomer"}
    assert data["maxSecondsBetweenMessages"] >= 900  # a search window of 100 requests/min rate-limit waits
    assert {url["type"] for url in data["externalDocumentationUrls"]} >= {"api_reference", "rate_limits"}


def test_suggested_streams_are_streams_the_manifest_defines():
    manifest = (REPO / "manifest.yaml").read_text()
    names = set(re.findall(r"\{name: ([a-z_]+)", manifest)) | set(re.findall(r"\n\s+name: ([a-z_]+)\n", manifest))
    suggested = METADATA["data"]["suggestedStreams"]["streams"]

    assert suggested and set(suggested) <= names


def test_the_docs_page_has_airbyte_sections_in_their_order():
    sections = re.findall(r"^## (.+)$", DOCS, flags=re.MULTILINE)
    required = ["Prerequisites", "Setup guide", "Supported sync modes", "Supported streams", "Performance considerations",
                "Limitations", "Changelog"]

    assert [s for s in sections if s in required] == required
    assert DOCS.startswith("# Kustomer")
    assert "### Airbyte Cloud" in DOCS and "Airbyte Open Source" in DOCS
    assert f"| {METADATA['data']['dockerImageTag']} |" in DOCS.split("## Changelog")[1]  # this version is in the changelog


def test_acceptance_test_config_sets_only_keys_the_cdk_reads():
    config = yaml.safe_load((REPO / "acceptance-test-config.yml").read_text())

    assert set(config) <= {"connector_image", "test_strictness_level", "acceptance_tests"}
    assert set(config["acceptance_tests"]) <= set(SCENARIO_SECTIONS)
    problems = [
        problem
        for section, tests in config["acceptance_tests"].items()
        for entry in tests["tests"]
        for problem in entry_key_problems(entry, (section,))
    ]
    assert problems == []
