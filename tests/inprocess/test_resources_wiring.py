"""Resources chosen at start and GPUs, wired into the hub (over fakes): what reaches the spawner, what is refused
before anything starts, group maxima, and GPUs that are never handed to two servers and always come back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.accounts import AccountService
from hub.app import create_app
from hub.config import ConfigError, Settings
from hub.db import Sessionmaker, get_user
from hub.gpus import GPUAllocator, NoGPUFree
from hub.keys import GPUS, GROUPS, SERVERS, TOKENS
from hub.models import ServerState
from hub.reconcile import Reconciler
from hub.resources import Limits
from hub.servers import Seen, ServerManager
from tests.fakes import FakeProxy, FakeSpawner
from tests.inprocess.pages import log_in

IMAGES = [
    {
        "name": "lab",
        "display_name": "Lab",
        "image": "fake/lab:1",
        "choices": {
            "mem_limit": {"options": ["1g", "2g", "4g"], "default": "2g"},
            "cpu_limit": {"options": [0.5, 1, 2], "default": 1},
        },
    },
    {"name": "gpu", "display_name": "GPU Lab", "image": "fake/gpu:1", "gpus": 1, "mem_limit": "8g"},
    {
        "name": "pick",
        "display_name": "Pick GPUs",
        "image": "fake/pick:1",
        "choices": {"gpus": {"options": [0, 1, "all"], "default": 0}},
    },
    {"name": "plain", "display_name": "Plain", "image": "fake/plain:1"},
]
NVIDIA = {"Runtimes": {"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}}}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        images=IMAGES,
        group_limits={"students": {"mem_limit": "2g", "cpu_limit": 1, "gpus": 0}},
        hub={"data_dir": tmp_path / "data"},  # type: ignore[arg-type]
        spawner={"gpus": 2},  # type: ignore[arg-type]
        lifecycle={"reconcile_interval": 3600, "dependency_check_interval": 3600},
        traefik={"dynamic_dir": tmp_path / "routes"},
    )


@pytest.fixture
def spawner() -> FakeSpawner:
    return FakeSpawner(info=NVIDIA)


@pytest.fixture
async def manager(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> AsyncIterator[ServerManager]:
    servers = ServerManager(settings, sessions, spawner, proxy, gpus=GPUAllocator(["0", "1"]))
    yield servers
    await servers.shutdown()


async def finished(manager: ServerManager, name: str, server: str = "") -> dict[str, object]:
    progress = manager.progress(name, server)
    assert progress is not None
    async for _ in progress.follow():
        pass
    assert progress.latest is not None
    return progress.latest.as_json()


async def seen_of(sessions: Sessionmaker, name: str) -> Seen:
    async with sessions() as session:
        user = await get_user(session, name)
        assert user is not None and user.server is not None
        return Seen(user.server.state, user.server.started)


def image(settings: Settings, name: str):  # type: ignore[no-untyped-def]
    found = settings.image(name)
    assert found is not None
    return found


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


async def token_of(client: TestClient, name: str) -> str:
    return (await client.server.app[TOKENS].create(name, "test"))[1]


# -- choices --------------------------------------------------------------------------------------


async def test_choices_sent_to_the_api_reach_the_spawner_and_the_server_model(
    app_client: TestClient, spawner: FakeSpawner
) -> None:
    alice = auth(await token_of(app_client, "alice"))
    body = {"image": "lab", "mem_limit": "4g", "cpu_limit": 2, "extra": "ignored, as JupyterHub does"}
    started = await app_client.post("/hub/api/users/alice/server", json=body, headers=alice)
    assert started.status == 201, await started.text()
    assert spawner.requests[-1].limits == Limits(mem_limit="4g", cpu_limit=2.0, gpus=0)
    assert spawner.requests[-1].gpu_ids == ()
    model = await (await app_client.get("/hub/api/users/alice", headers=alice)).json()
    assert model["servers"][""]["user_options"] == {"image": "lab", "mem_limit": "4g", "cpu_limit": "2"}

    # No choice sent: the image's defaults. An image without choices keeps its fixed limits.
    bob = auth(await token_of(app_client, "bob"))
    assert (await app_client.post("/hub/api/users/bob/server", json={"image": "lab"}, headers=bob)).status == 201
    assert spawner.requests[-1].limits == Limits(mem_limit="2g", cpu_limit=1.0, gpus=0)
    admin = auth(await token_of(app_client, "admin"))
    assert (await app_client.post("/hub/api/users/admin/server", json={"image": "plain"}, headers=admin)).status == 201
    assert spawner.requests[-1].limits == Limits()
    model = await (await app_client.get("/hub/api/users/admin", headers=admin)).json()
    assert model["servers"][""]["user_options"] == {"image": "plain"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"image": "lab", "mem_limit": "8g"}, "Memory 8g is not offered for Lab: choose 1g, 2g or 4g."),
        ({"image": "lab", "cpu_limit": "16"}, "CPUs 16 is not offered for Lab: choose 0.5, 1 or 2."),
        ({"image": "lab", "mem_limit": ["1g", "2g"]}, "mem_limit must be one of the offered values"),
        ({"image": "plain", "mem_limit": "1g"}, "Plain offers no choice of memory (it has no limit)."),
        ({"image": "pick", "gpus": "3"}, "GPUs 3 is not offered for Pick GPUs: choose 0, 1 or all."),
    ],
)
async def test_a_value_not_offered_is_refused_and_nothing_starts(
    app_client: TestClient, spawner: FakeSpawner, body: dict[str, object], message: str
) -> None:
    alice = auth(await token_of(app_client, "alice"))
    refused = await app_client.post("/hub/api/users/alice/server", json=body, headers=alice)
    assert refused.status == 400
    assert message in (await refused.json())["message"]
    assert spawner.started == []
    model = await (await app_client.get("/hub/api/users/alice", headers=alice)).json()
    assert model["servers"] == {} and model["pending"] is None
    assert app_client.server.app[GPUS].in_use() == {}


async def test_the_body_must_be_a_json_object(app_client: TestClient, spawner: FakeSpawner) -> None:
    alice = auth(await token_of(app_client, "alice"))
    for body in (b"[1]", b'"lab"', b"{not json"):
        refused = await app_client.post("/hub/api/users/alice/server", data=body, headers=alice)
        assert refused.status == 400
    assert spawner.started == []


async def test_the_spawn_form_offers_the_choices_and_sends_them(app_client: TestClient, spawner: FakeSpawner) -> None:
    csrf = await log_in(app_client, "alice")
    form = await (await app_client.get("/hub/spawn")).text()
    assert 'name="mem_limit"' in form and '<option value="4g"' in form and "resource_choices.js" in form
    assert "2 of 2 GPUs free" in form
    assert "Memory 8g · no CPU limit · 1 GPU" in form  # the fixed limits of the GPU image, in words
    choice = {"_xsrf": csrf, "image": "lab", "mem_limit": "1g", "cpu_limit": "0.5"}
    assert (await app_client.post("/hub/spawn", data=choice, allow_redirects=False)).status == 303
    await finished(app_client.server.app[SERVERS], "alice")
    assert spawner.requests[-1].limits == Limits(mem_limit="1g", cpu_limit=0.5, gpus=0)
    home = await (await app_client.get("/hub/home")).text()
    assert "Memory 1g · 0.5 CPUs" in home
    await log_in(app_client, "admin")
    assert "Memory 1g · 0.5 CPUs" in await (await app_client.get("/hub/admin")).text()


async def test_a_tampered_form_value_is_refused_with_the_offer(app_client: TestClient, spawner: FakeSpawner) -> None:
    csrf = await log_in(app_client, "alice")
    for tampered, message in (
        ({"mem_limit": "64g"}, "Memory 64g is not offered for Lab: choose 1g, 2g or 4g."),
        ({"mem_limit": "1g&lt;script&gt;"}, "is not offered for Lab"),
    ):
        data = {"_xsrf": csrf, "image": "lab", **tampered}
        refused = await app_client.post("/hub/spawn", data=data, allow_redirects=False)
        assert refused.status == 400
        assert message in await refused.text()
    twice = await app_client.post(
        "/hub/spawn", data=[("_xsrf", csrf), ("image", "lab"), ("mem_limit", "1g"), ("mem_limit", "4g")]
    )
    assert twice.status == 400
    assert spawner.started == []


async def test_group_maxima_limit_the_choices(app_client: TestClient, spawner: FakeSpawner) -> None:
    await app_client.server.app[GROUPS].create(["students"], ["alice"])
    await log_in(app_client, "alice")
    form = await (await app_client.get("/hub/spawn")).text()
    assert '<option value="2g"' in form and '<option value="4g"' not in form
    assert 'value="gpu"' not in form  # its fixed 8g and GPU are above the students' maxima
    alice = auth(await token_of(app_client, "alice"))
    refused = await app_client.post(
        "/hub/api/users/alice/server", json={"image": "lab", "mem_limit": "4g"}, headers=alice
    )
    assert refused.status == 400 and "choose 1g or 2g" in (await refused.json())["message"]
    forbidden = await app_client.post("/hub/api/users/alice/server", json={"image": "gpu"}, headers=alice)
    assert forbidden.status == 403
    assert "it needs more memory than your groups allow (at most 2g)" in (await forbidden.json())["message"]
    assert spawner.started == []
    plain = await app_client.post("/hub/api/users/alice/server", json={"image": "plain"}, headers=alice)
    assert plain.status == 201
    assert spawner.requests[-1].limits == Limits(mem_limit="2g", cpu_limit=1.0, gpus=0)  # the group's maximum
    # an admin, starting for her, has no maximum
    admin = auth(await token_of(app_client, "admin"))
    await app_client.delete("/hub/api/users/alice/server", headers=alice)
    body = {"image": "lab", "mem_limit": "4g"}
    assert (await app_client.post("/hub/api/users/alice/server", json=body, headers=admin)).status == 201
    assert spawner.requests[-1].limits == Limits(mem_limit="4g", cpu_limit=1.0, gpus=0)


# -- GPUs -------------------------------------------------------------------------------------------


async def test_concurrent_starts_never_share_a_gpu(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner, accounts: AccountService
) -> None:
    await accounts.add(["carol", "dave"])
    spawner.gate = asyncio.Event()
    people = ["alice", "bob", "carol", "dave"]
    results = await asyncio.gather(
        *(manager.start(name, image(settings, "gpu")) for name in people), return_exceptions=True
    )
    refused = [result for result in results if isinstance(result, NoGPUFree)]
    assert len(refused) == 2
    assert "All 2 GPUs are in use; try again later or pick an image without a GPU." in refused[0].user_message
    held = manager.gpus.in_use()
    assert sorted(ident for ids in held.values() for ident in ids) == ["0", "1"]
    spawner.gate.set()
    winners = [name for name, result in zip(people, results, strict=True) if not isinstance(result, BaseException)]
    for name in winners:
        assert (await finished(manager, name))["ready"] is True
    assert sorted(request.gpu_ids for request in spawner.requests) == [("0",), ("1",)]
    for name in set(people) - set(winners):  # refused before anything changed: no server row, nothing started
        assert await manager.view(name) is None


async def test_all_gpus_waits_for_none_in_use_and_a_count_above_the_host_is_refused(
    manager: ServerManager, settings: Settings
) -> None:
    await manager.start("alice", image(settings, "pick"), user_options={"gpus": "1"})
    await finished(manager, "alice")
    with pytest.raises(NoGPUFree, match="needs all 2 GPUs, but 1 of them are in use"):
        await manager.start("bob", image(settings, "pick"), user_options={"gpus": "all"})
    await manager.stop("alice")
    await manager.start("bob", image(settings, "pick"), user_options={"gpus": "all"})
    await finished(manager, "bob")
    assert manager.gpus.holding("bob") == ("0", "1")


async def test_gpus_come_back_on_stop_crash_cull_and_deletion(
    manager: ServerManager,
    settings: Settings,
    spawner: FakeSpawner,
    sessions: Sessionmaker,
    accounts: AccountService,
) -> None:
    gpu = image(settings, "gpu")

    async def run(name: str) -> None:
        await manager.start(name, gpu)
        assert (await finished(manager, name))["ready"] is True
        assert manager.gpus.holding(name)

    await run("alice")
    await manager.stop("alice")
    assert manager.gpus.free() == ["0", "1"]
    await manager.stop("alice")  # twice is fine

    await run("alice")
    spawner.crash("alice", exit_code=137, oom=True)
    await Reconciler(settings, manager).run_once()
    assert manager.gpus.free() == ["0", "1"]
    view = await manager.view("alice")
    assert view is not None and view.state == ServerState.STOPPED
    assert "ran out of memory (its limit is 8g)" in (view.error or "")

    await run("alice")
    assert await manager.cull("alice", "idle for an hour", await seen_of(sessions, "alice"))
    assert manager.gpus.free() == ["0", "1"]

    await run("bob")
    await manager.delete_user("bob", accounts.delete)
    assert manager.gpus.free() == ["0", "1"]


async def test_gpus_come_back_after_a_failed_and_a_cancelled_start(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner
) -> None:
    spawner.fail_with = "no such image"
    await manager.start("alice", image(settings, "gpu"))
    assert manager.gpus.holding("alice") == ("0",)
    assert (await finished(manager, "alice"))["failed"] is True
    assert manager.gpus.free() == ["0", "1"]

    spawner.fail_with = None
    spawner.gate = asyncio.Event()
    await manager.start("alice", image(settings, "gpu"))
    await asyncio.sleep(0)
    assert manager.is_spawning("alice") and manager.gpus.holding("alice")
    await manager.stop("alice")  # cancels the start
    assert manager.gpus.free() == ["0", "1"]
    assert spawner.running() == set()


async def test_a_named_server_holds_its_own_gpus(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    named = settings.model_copy(update={"spawner": settings.spawner.model_copy(update={"named_servers": True})})
    manager = ServerManager(named, sessions, spawner, proxy, gpus=GPUAllocator(["0", "1"]))
    await manager.start("alice", image(named, "gpu"))
    await manager.start("alice", image(named, "gpu"), "second")
    await finished(manager, "alice")
    await finished(manager, "alice", "second")
    assert manager.gpus.in_use() == {"alice": ("0",), "alice/second": ("1",)}
    await manager.delete_server("alice", "second")
    assert manager.gpus.in_use() == {"alice": ("0",)}
    await manager.shutdown()


async def test_a_restarted_hub_knows_which_gpus_are_taken(
    manager: ServerManager, settings: Settings, sessions: Sessionmaker, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    await manager.start("alice", image(settings, "pick"), user_options={"gpus": "all"})
    await finished(manager, "alice")
    restarted = ServerManager(settings, sessions, spawner, proxy, gpus=GPUAllocator(["0", "1"]))
    await restarted.load()  # from the database, before Docker is asked
    assert restarted.gpus.holding("alice") == ("0", "1")
    after_docker = ServerManager(settings, sessions, spawner, proxy, gpus=GPUAllocator(["0", "1"]))
    await Reconciler(settings, after_docker).run_once(rewrite_routes=True)  # from the containers' labels
    assert after_docker.gpus.holding("alice") == ("0", "1")
    with pytest.raises(NoGPUFree):
        await after_docker.start("bob", image(settings, "gpu"))


async def test_gpus_of_a_start_cut_short_by_a_restart_come_back(
    manager: ServerManager, settings: Settings, sessions: Sessionmaker, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    await manager.start("alice", image(settings, "gpu"))
    await finished(manager, "alice")
    async with sessions.begin() as session:  # as if the hub had died while starting it
        user = await get_user(session, "alice")
        assert user is not None and user.server is not None and user.server.gpu_ids == "0"
        user.server.state = ServerState.STARTING
    restarted = ServerManager(settings, sessions, spawner, proxy, gpus=GPUAllocator(["0", "1"]))
    await restarted.load()
    assert restarted.gpus.holding("alice") == ("0",)
    await Reconciler(settings, restarted).run_once(rewrite_routes=True)
    assert restarted.gpus.in_use() == {} and spawner.running() == set()


async def test_a_start_may_wait_for_a_gpu(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    waiting = settings.model_copy(update={"spawner": settings.spawner.model_copy(update={"gpu_wait": 5})})
    manager = ServerManager(waiting, sessions, spawner, proxy, gpus=GPUAllocator(["0"]))
    await manager.start("alice", image(waiting, "gpu"))
    await finished(manager, "alice")
    progress = await manager.start("bob", image(waiting, "gpu"))
    await asyncio.sleep(0.05)
    assert "Waiting for a free GPU" in progress.events[-1].message
    await manager.stop("alice")
    assert (await finished(manager, "bob"))["ready"] is True
    assert manager.gpus.in_use() == {"bob": ("0",)}
    await manager.shutdown()


async def test_no_free_gpu_is_a_429_in_words(app_client: TestClient, spawner: FakeSpawner) -> None:
    alice = auth(await token_of(app_client, "alice"))
    body = {"image": "pick", "gpus": "all"}
    assert (await app_client.post("/hub/api/users/alice/server", json=body, headers=alice)).status == 201
    bob = auth(await token_of(app_client, "bob"))
    refused = await app_client.post("/hub/api/users/bob/server", json={"image": "gpu"}, headers=bob)
    assert refused.status == 429
    assert (await refused.json())["message"] == (
        "All 2 GPUs are in use; try again later or pick an image without a GPU."
    )
    assert spawner.started == ["alice"]
    csrf = await log_in(app_client, "bob")
    assert "No GPU is free right now (2 in use)" in await (await app_client.get("/hub/spawn")).text()
    form = await app_client.post("/hub/spawn", data={"_xsrf": csrf, "image": "gpu"}, allow_redirects=False)
    assert form.status == 429 and "All 2 GPUs are in use" in await form.text()
    await app_client.delete("/hub/api/users/alice/server", headers=alice)
    assert (await app_client.post("/hub/api/users/bob/server", json={"image": "gpu"}, headers=bob)).status == 201
    assert spawner.requests[-1].gpu_ids == ("0",)


async def test_a_hub_without_the_nvidia_runtime_refuses_to_start(settings: Settings) -> None:
    app = create_app(settings, spawner=FakeSpawner(info={"Runtimes": {"runc": {}}}), proxy=FakeProxy())
    client = TestClient(TestServer(app))
    with pytest.raises(ConfigError) as refused:
        await client.start_server()
    message = str(refused.value)
    assert (
        "images gpu, pick ask for GPUs, but Docker on this host has no NVIDIA runtime (its runtimes: runc)" in message
    )
    assert "nvidia-ctk runtime configure --runtime=docker" in message
    await client.close()


async def test_a_hub_without_gpu_images_needs_no_runtime(tmp_path: Path) -> None:
    settings = Settings(
        images=[IMAGES[0], IMAGES[3]],
        hub={"data_dir": tmp_path / "data"},  # type: ignore[arg-type]
        lifecycle={"reconcile_interval": 3600, "dependency_check_interval": 3600},
        traefik={"dynamic_dir": tmp_path / "routes"},
    )
    client = TestClient(TestServer(create_app(settings, spawner=FakeSpawner(), proxy=FakeProxy())))
    await client.start_server()
    assert client.server.app[GPUS].total == 0
    await client.close()
