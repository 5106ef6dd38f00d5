"""What Airbyte's catalog needs besides the code: metadata.yaml valid against Airbyte's own metadata
model (the base image pinned by digest), the docs page in the headings of Airbyte's template with a setup for
each way in, one docs URL everywhere, and acceptance-test-config.yml with only the keys the current CDK reads."""

from __future__ import annotations

import re
import tomllib
import uuid
from pathlib import Path
from typing import List

import yaml
from airbyte_cdk.test.models.scenario import SCENARIO_SECTIONS, entry_key_problems
from airbyte_connector_models.metadata.v0.connector_metadata_definition_v0 import ConnectorMetadataDefinitionV0

REPO = Path(__file__).resolve().parent.parent
METADATA_TEXT = (REPO / "metadata.yaml").read_text()
METADATA = yaml.safe_load(METADATA_TEXT)
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
    # every host the spec can send the token to: the regions, an org's own host, an api_url under kustomerapp.com
    assert set(data["allowedHosts"]["hosts"]) >= {"api.kustomerapp.com", "api.prod2.kustomerapp.com", "api.prod4.kustomerapp.com",
                                                  "*.api.kustomerapp.com", "*.kustomerapp.com"}
    # not on PyPI: the docs page installs it from a git URL or a clone
    assert data["remoteRegistries"]["pypi"] == {"enabled": False, "packageName": "airbyte-source-kustomer"}
    assert data["registryOverrides"]["cloud"]["enabled"] is False  # the docs page: Airbyte Cloud cannot run it
    assert data["maxSecondsBetweenMessages"] >= 900  # a search window of 100 requests/min rate-limit waits
    assert {url["type"] for url in data["externalDocumentationUrls"]} >= {"api_reference", "rate_limits"}


def test_suggested_streams_are_streams_the_manifest_defines():
    manifest = (REPO / "manifest.yaml").read_text()
    names = set(re.findall(r"\{name: ([a-z_]+)", manifest)) | set(re.findall(r"\n\s+name: ([a-z_]+)\n", manifest))
    suggested = METADATA["data"]["suggestedStreams"]["streams"]

    assert suggested and set(suggested) <= names


# Airbyte's template for a source's docs page, as data: its headings in order, each either required or one the
# page may leave out, and OWN, a place for any headings of the connector's own. Taken from airbytehq/airbyte,
# airbyte-ci/connectors/connectors_qa/src/connectors_qa/checks/documentation/templates/template.md.j2 (the
# headings and their order) and .../checks/documentation/documentation.py (CheckDocumentationHeadersOrder: the
# headings a page may leave out, and how a "{ Connector-specific features }" heading of the template takes the
# page's own headings). Like that check, names count and levels do not. {name} is metadata.yaml's name.
OWN = None
AIRBYTE_DOCS_TEMPLATE = [
    ("{name}", True),
    ("Prerequisites", True),
    ("Setup guide", True),
    ("Set up {name}", True),
    ("For Airbyte Cloud:", False),
    ("For Airbyte Open Source:", False),
    (OWN, False),
    ("Set up the {name} connector in Airbyte", False),
    ("For Airbyte Cloud:", False),
    ("For Airbyte Open Source:", False),
    (OWN, False),
    ("Supported sync modes", True),
    ("Supported Streams", True),
    (OWN, False),
    ("Performance considerations", False),
    ("Data type map", False),
    ("Limitations & Troubleshooting", False),
    (OWN, False),
    ("Tutorials", False),
    ("Changelog", True),
]


def headings(markdown: str) -> List[str]:
    """The names of the page's headings of levels 1 to 4 (those Airbyte's check reads), outside fenced code."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^#{1,4} +(.+?)\s*$", line)):
            found.append(match.group(1))
    return found


def template_problems(page: List[str], name: str) -> List[str]:
    """Where the page's headings leave Airbyte's template: a heading out of the template's order or in a place
    the template keeps for another, a required heading missing, or a heading after the template's last."""
    slots = [(heading.format(name=name) if heading else OWN, required) for heading, required in AIRBYTE_DOCS_TEMPLATE]
    named = {heading for heading, _ in slots if heading}
    position = 0
    for heading in page:
        while position < len(slots):
            expected, required = slots[position]
            if expected is OWN and heading not in named:
                break  # the connector's own heading, where the template has room for it
            if heading == expected:
                position += 1
                break
            if required:
                return [f"'{heading}' is where Airbyte's template expects '{expected}'"]
            position += 1  # a heading the template allows the page to leave out
        else:
            return [f"'{heading}' comes after the template's last heading"]
    return [f"'{expected}' is missing" for expected, required in slots[position:] if required]


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = markdown.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(rf"^#{{1,{level}}} ", markdown[start:], flags=re.MULTILINE)
    return markdown[start: start + following.start()] if following else markdown[start:]


def test_the_template_check_finds_what_airbyte_s_check_finds():
    good = ["Kustomer", "Prerequisites", "Setup guide", "Set up Kustomer", "Own", "Supported sync modes",
            "Supported Streams", "More of its own", "Limitations & Troubleshooting", "Changelog"]
    assert template_problems(good, "Kustomer") == []
    # the page before this template: its fourth heading
    assert template_problems(["Kustomer", "Prerequisites", "Setup guide", "Airbyte Cloud and Airbyte Open Source"], "Kustomer") == [
        "'Airbyte Cloud and Airbyte Open Source' is where Airbyte's template expects 'Set up Kustomer'"]
    assert template_problems([h.replace("Streams", "streams") for h in good], "Kustomer")  # the template's capital S
    assert template_problems([h for h in good if h != "Changelog"], "Kustomer") == ["'Changelog' is missing"]
    assert template_problems(good[:2] + good[3:4] + good[2:3] + good[4:], "Kustomer")  # out of order
    assert template_problems(good[:-2] + good[-1:] + good[-2:-1], "Kustomer")  # a template heading after Changelog


def test_the_docs_page_follows_airbyte_s_template():
    assert template_problems(headings(DOCS), METADATA["data"]["name"]) == []


def test_the_docs_page_says_how_each_way_in_works_and_what_airbyte_cloud_does_not_allow():
    cloud = section(DOCS, "### For Airbyte Cloud:")
    assert "cannot run" in cloud and "custom components" in cloud and "Docker" in cloud
    oss = section(DOCS, "### For Airbyte Open Source:")
    assert all(step in oss for step in ("docker build", "docker push", "Add a new Docker connector", "New source"))
    builder = section(DOCS, "### Connector Builder")
    assert all(step in builder for step in ("make builder-bundle", "dist/builder/manifest.yaml", "dist/builder/components.py",
                                            "AIRBYTE_ENABLE_UNSAFE_CODE"))
    pyairbyte = section(DOCS, "### PyAirbyte")
    assert all(option in pyairbyte for option in ('pip_url="git+https://', "local_executable=", "AIRBYTE_OFFLINE_MODE"))
    assert "docker run" in section(DOCS, "### Run with Docker")


def test_the_changelog_is_airbyte_s_table_and_has_this_version():
    changelog = section(DOCS, "## Changelog")
    assert changelog.lstrip().startswith("<details>") and changelog.rstrip().endswith("</details>")
    assert "| Version | Date | Pull Request | Subject |" in changelog
    rows = {cells[0]: cells for cells in ([cell.strip() for cell in line.strip("|").split("|")] for line in changelog.splitlines()
                                         if re.match(r"^\| \d+\.\d+\.\d+ \|", line))}
    assert METADATA["data"]["dockerImageTag"] in rows
    first = min(rows, key=lambda version: tuple(int(part) for part in version.split(".")))
    assert rows[first][1] == METADATA["data"]["releaseDate"]  # the first release's date


# One docs URL everywhere: the page in this repository (the connector is not in airbytehq/airbyte, so Airbyte's
# docs site has no page for it; docs.airbyte.com/integrations/sources/kustomer is the archived Singer connector's).
REPOSITORY_URL = "https://github.com/source-kustomer/source-kustomer"
DOCS_URL = f"{REPOSITORY_URL}/blob/main/docs/integrations/sources/kustomer.md"


def test_every_place_names_the_one_docs_url_and_it_is_a_page_of_this_repository():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    spec = yaml.safe_load((REPO / "manifest.yaml").read_text())["spec"]

    assert METADATA["data"]["documentationUrl"] == DOCS_URL
    assert spec["documentation_url"] == DOCS_URL
    assert pyproject["urls"] == {"Repository": REPOSITORY_URL, "Documentation": DOCS_URL}
    assert DOCS_URL in (REPO / "README.md").read_text() and DOCS_URL in DOCS
    assert (REPO / DOCS_URL.removeprefix(f"{REPOSITORY_URL}/blob/main/")).is_file()
    other_docs = re.findall(r"https://docs\.airbyte\.com/integrations/sources/kustomer\b[^)\s]*", DOCS + METADATA_TEXT)
    assert other_docs == []


# python-connector-base 4.0.2 by digest, as airbytehq/airbyte's connectors pin it (for example
# airbyte-integrations/connectors/source-google-drive/metadata.yaml). Airbyte's metadata validator wants the digest.
BASE_IMAGE = "docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73"


def test_the_base_image_is_pinned_by_digest_and_is_the_dockerfile_s():
    base = METADATA["data"]["connectorBuildOptions"]["baseImage"]

    assert re.fullmatch(r"docker\.io/airbyte/python-connector-base:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", base)
    assert base == BASE_IMAGE
    assert f"\nFROM {base}\n" in (REPO / "Dockerfile").read_text()


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
