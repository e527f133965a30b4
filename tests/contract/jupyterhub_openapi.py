"""JupyterHub's own OpenAPI document of its REST API, fetched from its source distribution on PyPI.

The document ships only in the sdist (`docs/source/_static/rest-api.yml`; the wheel lacks it). It is not
copied into this repository: `pip download` fetches the sdist once into ~/.cache/hub-tests/ and the one file
is kept there. Where the document itself is wrong (JupyterHub's own answers do not match it), `corrected`
patches a copy, and each patch names its reason.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml

# The JupyterHub release whose API we follow (benchmarks/jupyterhub_compare.py runs the same one).
JUPYTERHUB_VERSION = "6.1.1"
MEMBER = f"jupyterhub-{JUPYTERHUB_VERSION}/docs/source/_static/rest-api.yml"


class DocumentUnavailable(Exception):
    """The document could not be fetched; the message says why, in plain words."""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hub-tests" / f"jupyterhub-{JUPYTERHUB_VERSION}"


def fetch_document() -> Path:
    """The path of rest-api.yml, downloaded with pip the first time."""
    target = cache_dir() / "rest-api.yml"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
            "--disable-pip-version-check", f"jupyterhub=={JUPYTERHUB_VERSION}", "-d", tmp,
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise DocumentUnavailable(f"`{' '.join(command)}` did not finish within 10 minutes.") from None
        if result.returncode != 0:
            raise DocumentUnavailable(
                f"`{' '.join(command)}` failed (exit {result.returncode}); PyPI must be reachable:\n"
                f"{result.stderr[-2000:]}"
            )
        sdists = sorted(Path(tmp).glob("jupyterhub-*.tar.gz"))
        if not sdists:
            raise DocumentUnavailable(f"pip downloaded no jupyterhub-{JUPYTERHUB_VERSION}.tar.gz into {tmp}.")
        with tarfile.open(sdists[0]) as archive:
            try:
                member = archive.extractfile(MEMBER)
            except KeyError:
                member = None
            if member is None:
                raise DocumentUnavailable(f"{sdists[0].name} has no {MEMBER}.")
            text = member.read()
        partial = target.with_suffix(".part")
        partial.write_bytes(text)
        partial.replace(target)
    return target


def load_document() -> dict[str, Any]:
    document = yaml.safe_load(fetch_document().read_text(encoding="utf-8"))
    if not isinstance(document, dict) or "paths" not in document:
        raise DocumentUnavailable(f"{fetch_document()} is not an OpenAPI document; delete it to fetch it again.")
    return document


METHODS = ("get", "put", "post", "delete", "patch")


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (METHOD, path) the document describes."""
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS}


# JupyterHub's error body (its APIHandler.write_error): every endpoint answers errors with it.
ERROR_BODY = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
}
ERROR_STATUSES = {
    400: "the request is malformed or names something that cannot be done",
    401: "no valid token",
    403: "the token's owner may not do this",
    404: "the user, group, server, token or share does not exist",
}
CREATION_CONFLICT = 409  # POST of something that exists already (JupyterHub answers 409 too)

# Fields JupyterHub itself sends as null, while the document types them as strings or objects only.
NULLABLE_FIELDS = {
    "User": ["server", "pending", "last_activity", "auth_state"],
    "Server": ["pending", "started", "last_activity"],
    "Token": ["expires_at", "last_activity"],
    "NewToken": ["expires_at", "last_activity"],
}

# Each correction of JupyterHub's document, and why: the test prints this list.
CORRECTIONS = [
    "Every operation may answer 400, 401, 403 and 404 (and POST/PUT 409) with JupyterHub's error body "
    '{"status": N, "message": "..."}: JupyterHub answers them on every endpoint, the document lists them on few.',
    "Fields JupyterHub sends as null are typed without null in the document (for example User.server "
    '"null if not [running]", Token.expires_at "Null if there is no expiry"): '
    + "; ".join(f"{schema}.{', '.join(fields)}" for schema, fields in NULLABLE_FIELDS.items())
    + " accept null.",
    "GET /users/{name}/shared lists Share objects (JupyterHub's handler returns share models), "
    "not ShareCode objects as the document says.",
    "Unquoted times in the document's examples (POST /users/{name}/activity) are read by YAML as dates, not as "
    "the strings a JSON body holds: they are written back as ISO 8601 strings.",
    "GET /services answers an object keyed by service name (JupyterHub's handler builds a dict), "
    "not an array as the document says.",
]


def allow_null(schema: dict[str, Any]) -> None:
    kind = schema.get("type")
    if kind is None:
        return
    kinds = kind if isinstance(kind, list) else [kind]
    if "null" not in kinds:
        schema["type"] = [*kinds, "null"]
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]


def as_json_values(value: Any) -> Any:
    """The value with every date or time YAML made of an unquoted time written back as an ISO 8601 string."""
    if isinstance(value, dict):
        return {as_json_values(key): as_json_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_json_values(item) for item in value]
    if isinstance(value, dt.date):  # datetime.datetime is a date too
        return value.isoformat()
    return value


def corrected(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the document with the CORRECTIONS applied."""
    fixed = as_json_values(copy.deepcopy(document))
    schemas = fixed["components"]["schemas"]
    schemas["Error"] = ERROR_BODY
    for name, fields in NULLABLE_FIELDS.items():
        for field in fields:
            if field in schemas[name]["properties"]:
                allow_null(schemas[name]["properties"][field])
    for item in fixed["paths"].values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            errors = dict(ERROR_STATUSES)
            if method in ("post", "put"):
                errors[CREATION_CONFLICT] = "it exists already"
            for status, why in errors.items():
                if status not in responses and str(status) not in responses:
                    responses[status] = {
                        "description": why,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    }
    shared = fixed["paths"]["/users/{name}/shared"]["get"]["responses"][200]["content"]["application/json"]
    shared["schema"]["allOf"][1]["properties"]["items"]["items"] = {"$ref": "#/components/schemas/Share"}
    services = fixed["paths"]["/services"]["get"]["responses"][200]["content"]["application/json"]
    services["schema"] = {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Service"}}
    return fixed
