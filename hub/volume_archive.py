"""Users' Docker volumes to tar files and back, for ``hub backup --volumes`` and ``hub restore --volumes``.

Each volume is mounted at ``/volume`` in a short-lived helper container that is created but never
started; Docker's archive API (what ``docker cp`` uses) reads the files out of it and writes them
back. So the helper image needs no tar of its own, nothing runs in it, and the tar file lands
wherever the hub's command runs (also inside the hub's container). The archives hold ``volume/...``,
the same layout as the commands in ``volumes.txt`` make, with owners and modes kept.

Behind the hub's socket proxy this works too: the proxy lets the archive calls reach only containers
with the helper label that never ran and mount nothing but named volumes (hub/docker_policy.py).

What a restore unpacks (:func:`archive_problem`): files, folders, symbolic links (users' files hold them,
a Python virtual environment for one; they are links inside the volume, followed only inside the
containers that mount it) and hard links to a file earlier in the archive. It refuses the whole archive,
before anything is written, for a member outside ``volume/``, one written through a symbolic link
named earlier in the archive, a hard link to anything else, and device files and FIFOs (no user's
data, and a device file in a volume is a way to a host's disk). The message names the member and the
``tar --delete`` line that takes it out.
"""

from __future__ import annotations

import io
import re
import secrets
import shlex
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

import docker
import docker.errors
from docker.models.containers import Container

from hub.docker_policy import HELPER_LABEL, HELPER_MOUNT, MANAGED_LABEL

MOUNT = HELPER_MOUNT.lstrip("/")
"""The helper container sees the volume at /volume; archives hold volume/ and what is below it."""
VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
"""Docker's rule for volume names; also what makes ``<name>.tar`` a safe file name."""


class VolumeError(Exception):
    """A volume cannot be copied or put back; the message says which and why."""


def check_volume_name(name: str) -> str:
    if not VOLUME_NAME.match(name):
        raise VolumeError(f"{name!r} is not a Docker volume name")
    return name


def _parts(name: str) -> tuple[str, ...] | None:
    """A member's path as parts below volume/; None when it is absolute, climbs with .. or lies elsewhere."""
    parts = PurePosixPath(name.removeprefix("./")).parts
    if not parts or parts[0] != MOUNT or ".." in parts or name.startswith("/"):
        return None
    return parts


def _member_problem(member: tarfile.TarInfo, links: set[tuple[str, ...]], files: set[tuple[str, ...]]) -> str | None:
    """Why one member cannot be unpacked, given the symbolic links and files named before it."""
    parts = _parts(member.name)
    if parts is None:
        return f"it holds {member.name[:100]!r}, which is not inside {MOUNT}/"
    through = next((parts[:end] for end in range(1, len(parts)) if parts[:end] in links), None)
    if through is not None:
        return f"it writes {member.name[:100]!r} through the symbolic link {'/'.join(through)[:100]!r}"
    if member.ischr() or member.isblk():
        return f"it holds the device file {member.name[:100]!r}, which a volume never needs"
    if member.isfifo():
        return f"it holds the FIFO (named pipe) {member.name[:100]!r}, which holds no data"
    if member.issym():
        if len(parts) == 1:
            return f"its top folder {MOUNT} is a symbolic link"
        links.add(parts)
        files.discard(parts)
    elif member.islnk():
        target = _parts(member.linkname)
        if target is None:
            return f"it holds {member.linkname[:100]!r}, which is not inside {MOUNT}/"
        if target not in files:
            return f"its hard link {member.name[:100]!r} points to {member.linkname[:100]!r}, not a file before it"
    elif member.isfile():
        files.add(parts)
    elif not member.isdir():
        return f"it holds {member.name[:100]!r}, which is neither a file, a folder nor a link"
    return None


def archive_problem(path: Path) -> str | None:
    """Why a tar file cannot be a volume's archive (see the module's docstring); None if it can."""
    links: set[tuple[str, ...]] = set()
    files: set[tuple[str, ...]] = set()
    try:
        with tarfile.open(path, "r:") as archive:
            for member in archive:
                problem = _member_problem(member, links, files)
                if problem:
                    fix = f"tar --delete -f {shlex.quote(str(path))} {shlex.quote(member.name)}"
                    return f"{problem}. To put back everything else, take it out first: {fix}"
    except (tarfile.TarError, OSError) as exc:
        return f"it is not a readable tar file ({exc})"
    return None


def backup_command(name: str, image: str) -> str:
    """A shell line that copies a volume to volumes/<name>.tar below the current folder."""
    name = check_volume_name(name)
    return " ".join(
        [
            "docker run --rm --network none --user 0:0",
            f"-v {shlex.quote(f'{name}:/{MOUNT}:ro')}",
            '-v "$PWD/volumes":/backup',
            f"--entrypoint tar {shlex.quote(image)}",
            f"-C / -cf {shlex.quote(f'/backup/{name}.tar')} {MOUNT}",
        ]
    )


def restore_command(name: str, image: str, labels: dict[str, str]) -> str:
    """Shell lines that make the volume (with its labels) and fill it from volumes/<name>.tar."""
    name = check_volume_name(name)
    label_options = "".join(f" --label {shlex.quote(f'{key}={value}')}" for key, value in sorted(labels.items()))
    return f"docker volume create{label_options} {shlex.quote(name)} && " + " ".join(
        [
            "docker run --rm --network none --user 0:0",
            f"-v {shlex.quote(f'{name}:/{MOUNT}')}",
            '-v "$PWD/volumes":/backup:ro',
            f"--entrypoint tar {shlex.quote(image)}",
            f"-C / -xpf {shlex.quote(f'/backup/{name}.tar')}",
        ]
    )


class _Chunks(io.RawIOBase):
    """A file to read from Docker's stream of chunks (for tarfile's streaming mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._rest = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size], self._rest = self._rest[:size], self._rest[size:]
        return size


class VolumeArchiver:
    """Copies volumes out of and into Docker with a helper container of ``image``."""

    def __init__(self, client: docker.DockerClient, image: str, prefix: str, labels: dict[str, str]) -> None:
        self.client, self.image, self.prefix = client, image, prefix
        # hub.managed lets the socket proxy pass the helper's calls; no hub.prefix, so that the hub's
        # reconcile (which lists containers by prefix) never takes a helper for a server.
        self.labels = {**labels, MANAGED_LABEL: "true", HELPER_LABEL: "true"}

    def check_image(self) -> None:
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise VolumeError(
                f"the helper image {self.image} is not on this machine; pass --helper-image with an image that is "
                "(the hub's own image, or one of the images the hub offers)"
            ) from None

    def labels_of(self, name: str) -> dict[str, str] | None:
        """The volume's labels; None when there is no such volume."""
        try:
            return dict(self.client.volumes.get(name).attrs.get("Labels") or {})
        except docker.errors.NotFound:
            return None

    def hub_volumes(self) -> dict[str, dict[str, str]]:
        """Every volume this hub labelled (``hub.managed=true``, its prefix), by name, with its labels."""
        wanted = [f"{MANAGED_LABEL}=true", f"hub.prefix={self.prefix}"]
        found = self.client.volumes.list(filters={"label": wanted})
        return {volume.name: dict(volume.attrs.get("Labels") or {}) for volume in found}

    def _helper(self, name: str, read_only: bool) -> Container:
        return self.client.containers.create(
            self.image,
            command=["true"],
            name=f"{self.prefix}-backup-{secrets.token_hex(4)}",
            volumes={name: {"bind": f"/{MOUNT}", "mode": "ro" if read_only else "rw"}},
            network_disabled=True,
            labels=self.labels,
        )

    def _call(self, name: str, what: str, read_only: bool, work: Any) -> Any:
        try:
            helper = self._helper(name, read_only)
        except docker.errors.APIError as exc:
            raise VolumeError(f"{what} volume {name}: Docker refused the helper container: {exc.explanation}") from exc
        try:
            return work(helper)
        except docker.errors.APIError as exc:
            raise VolumeError(f"{what} volume {name}: Docker refused: {exc.explanation}") from exc
        finally:
            helper.remove(force=True)

    def archive(self, name: str, target: IO[bytes]) -> None:
        """Write the volume's files, as volume/..., to ``target``."""

        def work(helper: Container) -> None:
            chunks, _ = helper.get_archive(f"/{MOUNT}")
            for chunk in chunks:
                target.write(chunk)

        self._call(check_volume_name(name), "copying", True, work)

    def is_empty(self, name: str) -> bool:
        """Whether the existing volume holds nothing (only its top folder)."""

        def work(helper: Container) -> bool:
            chunks, _ = helper.get_archive(f"/{MOUNT}")
            with tarfile.open(fileobj=io.BufferedReader(_Chunks(iter(chunks))), mode="r|") as archive:
                return all(member.name.rstrip("/") == MOUNT for _, member in zip(range(2), archive, strict=False))

        return bool(self._call(check_volume_name(name), "looking into", True, work))

    def restore(self, name: str, source: Path, labels: dict[str, str]) -> None:
        """Make the volume when missing and unpack ``source`` (volume/...) into it."""
        if self.labels_of(check_volume_name(name)) is None:
            self.client.volumes.create(name, labels=labels)

        def work(helper: Container) -> None:
            with source.open("rb") as data:
                if not helper.put_archive("/", data):
                    raise VolumeError(f"putting back volume {name}: Docker did not unpack {source.name}")

        self._call(name, "putting back", False, work)
