# The hub's own image, used by docker-compose.yml.
#   BASE_IMAGE     any Debian-like image with python3 and venv (a local one where no registry is reachable)
#   EXTRA_CA_CERT  PEM text of a CA to trust during the build (a TLS-intercepting proxy's)
# The hub runs as the unprivileged user "hub" (uid 10000): `hub` on PATH is docker-entrypoint.sh, which
# drops to that user, with the Docker socket's group when the socket is mounted.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}
ARG EXTRA_CA_CERT=""
RUN if [ -n "$EXTRA_CA_CERT" ]; then printf '%s\n' "$EXTRA_CA_CERT" >> /etc/ssl/certs/ca-certificates.crt; fi
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10000 hub \
 && useradd --system --uid 10000 --gid hub --create-home --home-dir /home/hub --shell /usr/sbin/nologin hub
RUN python3 -m venv /opt/hub
COPY pyproject.toml README.md /src/
COPY hub /src/hub
RUN /opt/hub/bin/pip install --no-cache-dir "/src[fast]" && rm -rf /src
COPY docker-entrypoint.sh /opt/hub/entry/hub
RUN chmod 755 /opt/hub/entry/hub
# Build folders of the user images the default config offers; the hub builds them when missing.
COPY images /app/images
COPY hub.compose.yaml /etc/hub/hub.yaml
# The routes volume starts with these folders (Traefik watches the first; the second holds temp files).
RUN mkdir -p /routes/dynamic /routes/dynamic.tmp /data && chown -R hub:hub /routes /data
WORKDIR /app
ENV PATH=/opt/hub/entry:/opt/hub/bin:$PATH HUB_CONFIG=/etc/hub/hub.yaml PYTHONUNBUFFERED=1 \
    HUB_HEALTH_URL=http://127.0.0.1:8081/hub/login
EXPOSE 8081
# HUB_HEALTH_URL: where the hub answers; docker-compose.yml sets it to the hub's internal address.
HEALTHCHECK --interval=2s --timeout=2s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HUB_HEALTH_URL'], timeout=2)"]
CMD ["hub", "serve"]
