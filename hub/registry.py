"""Credentials for a private registry, so that the hub's pulls and every Swarm node can fetch its images.

``spawner.registry`` names the registry; its user and password come from the environment
(``HUB_REGISTRY_USER``, ``HUB_REGISTRY_PASSWORD``), never from the configuration file. Or
``spawner.registry_config`` points at a Docker client config file (``config.json`` with ``auths``, e.g. a
Docker secret). The Docker SDK then sends them as the ``X-Registry-Auth`` header of each pull and of each
service it creates (the Swarm manager hands them to the node that runs the task).
"""

from __future__ import annotations

import json
import os

import docker
import docker.auth

from hub.config import ConfigError, SpawnerSection

USER_ENV = "HUB_REGISTRY_USER"
PASSWORD_ENV = "HUB_REGISTRY_PASSWORD"


def registry_auth(settings: SpawnerSection, environ: dict[str, str] | None = None) -> docker.auth.AuthConfig | None:
    """The credentials to send, or None when no registry is configured."""
    env = os.environ if environ is None else environ
    if settings.registry_config is not None:
        path = settings.registry_config
        if settings.registry:
            raise ConfigError("set spawner.registry (credentials from the environment) or spawner.registry_config")
        if not path.is_file():
            raise ConfigError(f"spawner.registry_config: {path} is not a file")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"spawner.registry_config: {path} cannot be read as JSON: {exc}") from exc
        kinds = ("auths", "credsStore", "credHelpers")
        if not isinstance(document, dict) or not any(document.get(key) for key in kinds):
            raise ConfigError(f'spawner.registry_config: {path} holds no registry credentials (no "auths")')
        return docker.auth.load_config(str(path))
    if not settings.registry:
        return None
    user, password = env.get(USER_ENV, ""), env.get(PASSWORD_ENV, "")
    if not user or not password:
        raise ConfigError(f"spawner.registry is {settings.registry}: set {USER_ENV} and {PASSWORD_ENV} for it")
    configs = docker.auth.AuthConfig({})
    configs.add_auth(settings.registry, {"username": user, "password": password, "serveraddress": settings.registry})
    return configs


__all__ = ["PASSWORD_ENV", "USER_ENV", "registry_auth"]
