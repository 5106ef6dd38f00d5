# source-kustomer on Airbyte's Python connector base image (the baseImage in metadata.yaml; keep them equal).
#
#   docker build -t airbyte/source-kustomer:dev .
#   docker run --rm airbyte/source-kustomer:dev spec
#   docker run --rm -v $(pwd)/secrets:/secrets airbyte/source-kustomer:dev check --config /secrets/config.json
#   docker run --rm -v $(pwd)/secrets:/secrets airbyte/source-kustomer:dev discover --config /secrets/config.json
#   docker run --rm -v $(pwd)/secrets:/secrets airbyte/source-kustomer:dev read --config /secrets/config.json --catalog /secrets/configured_catalog.json
#
# secrets/ (git-ignored) holds config.json ({"api_token": "..."}) and, for read, a configured catalog.
FROM docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73

WORKDIR /airbyte/integration_code

# The wheel is built by hatchling: pyproject.toml names README.md as the readme and force-includes
# the top-level manifest.yaml into the package.
COPY pyproject.toml README.md manifest.yaml ./
COPY source_kustomer ./source_kustomer
RUN pip install --no-cache-dir .

LABEL io.airbyte.name=airbyte/source-kustomer
LABEL io.airbyte.version=0.2.0

# Run as the base image's non-root user, as Airbyte's own connector images do.
USER airbyte

# The platform reads AIRBYTE_ENTRYPOINT to launch the connector.
ENV AIRBYTE_ENTRYPOINT="source-kustomer"
ENTRYPOINT ["source-kustomer"]
