"""GPUs: whole GPUs per server, never one to two servers at once, given back on every exit, learned again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.config import ConfigError, Settings
from hub.gpus import (
    GPUAllocator,
    NoGPUFree,
    check_gpus,
    discovered_gpu_ids,
    gpu_label,
    gpu_problems,
    has_nvidia_support,
    host_gpu_ids,
    parse_gpu_label,
)

NO_GPU_DAEMON = {"Runtimes": {"runc": {"path": "runc"}, "io.containerd.runc.v2": {"path": "runc"}}}
NVIDIA_DAEMON = {"Runtimes": {"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}}}
CDI_DAEMON = {
    "Runtimes": {"runc": {}},
    "DiscoveredDevices": [
        {"Source": "cdi", "ID": "nvidia.com/gpu=0"},
        {"Source": "cdi", "ID": "nvidia.com/gpu=1"},
        {"Source": "cdi", "ID": "nvidia.com/gpu=all"},
        {"Source": "cdi", "ID": "vendor.com/fpga=0"},
    ],
}


def settings_with(gpus: Any = 0, image: dict[str, Any] | None = None, **spawner: Any) -> Settings:
    entry = {"name": "torch", "image": "torch:1", **(image if image is not None else {"gpus": 1})}
    return Settings(images=[entry], spawner={"gpus": gpus, **spawner})


# -- allocation -------------------------------------------------------------------------------


def test_whole_gpus_go_to_one_server_each_and_come_back() -> None:
    gpus = GPUAllocator(["0", "1"])
    assert gpus.try_allocate("alice", 1) == ["0"]
    assert gpus.try_allocate("bob", 1) == ["1"]
    with pytest.raises(NoGPUFree) as refused:
        gpus.try_allocate("carol", 1)
    assert refused.value.user_message == "All 2 GPUs are in use; try again later or pick an image without a GPU."
    assert refused.value.status == 429
    assert gpus.release("alice") == ("0",)
    assert gpus.free() == ["0"]
    assert gpus.try_allocate("carol", 1) == ["0"]
    assert gpus.in_use() == {"bob": ("1",), "carol": ("0",)}


def test_asking_twice_keeps_the_same_gpus_and_releasing_twice_is_fine() -> None:
    gpus = GPUAllocator(["0", "1", "2"])
    assert gpus.try_allocate("alice", 2) == ["0", "1"]
    assert gpus.try_allocate("alice", 2) == ["0", "1"]
    assert gpus.try_allocate("alice", 1) == ["0"]  # a new count: the old ones go back first
    assert gpus.release("alice") == ("0",)
    assert gpus.release("alice") == ()
    assert gpus.try_allocate("alice", 0) == [] and gpus.free() == ["0", "1", "2"]


def test_too_few_free_gpus_say_how_many_are_free() -> None:
    gpus = GPUAllocator(["0", "1", "2", "3"])
    gpus.try_allocate("alice", 3)
    with pytest.raises(NoGPUFree, match="Only 1 of 4 GPUs is free and this server needs 2"):
        gpus.try_allocate("bob", 2)
    with pytest.raises(NoGPUFree, match="needs 5 GPUs, but this hub has only 4"):
        gpus.try_allocate("bob", 5)
    with pytest.raises(NoGPUFree, match="needs 1 GPU, but this hub has none"):
        GPUAllocator([]).try_allocate("bob", 1)


def test_all_takes_every_gpu_only_when_none_is_in_use() -> None:
    gpus = GPUAllocator(["0", "1"])
    gpus.try_allocate("alice", 1)
    with pytest.raises(NoGPUFree, match="needs all 2 GPUs, but 1 of them are in use"):
        gpus.try_allocate("bob", "all")
    gpus.release("alice")
    assert gpus.try_allocate("bob", "all") == ["0", "1"]
    with pytest.raises(NoGPUFree, match="All 2 GPUs are in use"):
        gpus.try_allocate("alice", 1)


def test_with_sharing_each_start_gets_the_least_used_gpus() -> None:
    gpus = GPUAllocator(["0", "1"], sharing=True)
    assert gpus.try_allocate("alice", 1) == ["0"]
    assert gpus.try_allocate("bob", 1) == ["1"]
    assert gpus.try_allocate("carol", 1) == ["0"]
    assert gpus.try_allocate("dave", "all") == ["0", "1"]
    assert gpus.free() == []
    for name in ("alice", "bob", "carol", "dave"):
        gpus.release(name)
    assert gpus.free() == ["0", "1"]


async def test_concurrent_starts_never_get_the_same_gpu() -> None:
    gpus = GPUAllocator([str(index) for index in range(4)])

    async def start(name: str) -> list[str]:
        await asyncio.sleep(0)  # let every start reach this point before any allocates
        return await gpus.allocate(name, 1)

    results = await asyncio.gather(*(start(f"user{index}") for index in range(10)), return_exceptions=True)
    granted = [result for result in results if isinstance(result, list)]
    refused = [result for result in results if isinstance(result, NoGPUFree)]
    assert len(granted) == 4 and len(refused) == 6
    assert sorted(ident for ids in granted for ident in ids) == ["0", "1", "2", "3"]


async def test_a_start_waits_for_a_gpu_that_comes_free() -> None:
    gpus = GPUAllocator(["0"])
    gpus.try_allocate("alice", 1)
    waiting = asyncio.create_task(gpus.allocate("bob", 1, wait=5))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    gpus.release("alice")
    assert await asyncio.wait_for(waiting, 1) == ["0"]
    with pytest.raises(NoGPUFree):
        await gpus.allocate("carol", 1, wait=0.05)


async def test_a_cancelled_waiting_start_holds_nothing() -> None:
    gpus = GPUAllocator(["0"])
    gpus.try_allocate("alice", 1)
    waiting = asyncio.create_task(gpus.allocate("bob", 1, wait=5))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gpus.release("alice")
    assert gpus.in_use() == {} and gpus.free() == ["0"]


@pytest.mark.parametrize("ending", ["stopped", "crashed", "culled", "start failed", "start cancelled"])
async def test_every_end_of_a_server_gives_its_gpus_back(ending: str) -> None:
    """The hub's pattern: allocate, start, and release in a finally on failure, or when the server ends."""
    gpus = GPUAllocator(["0"])

    async def spawn(fail: BaseException | None) -> None:
        ids = await gpus.allocate("alice", 1)
        try:
            assert ids == ["0"]
            if fail is not None:
                raise fail
        except BaseException:
            gpus.release("alice")
            raise

    if ending == "start failed":
        with pytest.raises(RuntimeError):
            await spawn(RuntimeError("image missing"))
    elif ending == "start cancelled":
        with pytest.raises(asyncio.CancelledError):
            await spawn(asyncio.CancelledError())
    else:
        await spawn(None)
        assert gpus.free() == []
        gpus.release("alice")  # stop, reconcile's crash record and the culler all end in the manager's stop
    assert gpus.free() == ["0"]
    assert gpus.try_allocate("bob", 1) == ["0"]


def test_gpus_of_running_servers_are_learned_again_after_a_restart() -> None:
    gpus = GPUAllocator(["0", "1", "2"])
    gpus.adopt("alice", parse_gpu_label("0,2"))
    gpus.adopt("bob", parse_gpu_label(None))
    assert gpus.in_use() == {"alice": ("0", "2")}
    assert gpus.try_allocate("carol", 1) == ["1"]
    with pytest.raises(NoGPUFree):
        gpus.try_allocate("dave", 1)


def test_the_label_round_trips() -> None:
    assert gpu_label(["0", "1"]) == "0,1"
    assert parse_gpu_label("GPU-fef8089b,GPU-aa") == ("GPU-fef8089b", "GPU-aa")
    assert parse_gpu_label("") == ()


# -- what the host has and the start-up check ---------------------------------------------------


def test_the_host_gpus_come_from_the_configuration_or_from_docker() -> None:
    assert host_gpu_ids(settings_with(2).spawner) == ("0", "1")
    assert host_gpu_ids(settings_with("auto", gpu_ids=["GPU-a", "GPU-b"]).spawner) == ("GPU-a", "GPU-b")
    assert host_gpu_ids(settings_with("auto").spawner, CDI_DAEMON) == ("0", "1")
    assert host_gpu_ids(settings_with("auto").spawner, NO_GPU_DAEMON) == ()
    assert discovered_gpu_ids(CDI_DAEMON) == ("0", "1")
    assert has_nvidia_support(NVIDIA_DAEMON) and has_nvidia_support(CDI_DAEMON)
    assert not has_nvidia_support(NO_GPU_DAEMON) and not has_nvidia_support({})


def test_gpu_ids_and_a_different_count_are_refused() -> None:
    with pytest.raises(ValueError, match="spawner.gpus: 3 does not match the 2 gpu_ids"):
        settings_with(3, gpu_ids=["a", "b"])
    with pytest.raises(ValueError, match="an id is listed twice"):
        settings_with("auto", gpu_ids=["a", "a"])


def test_an_image_asking_for_gpus_on_a_host_without_the_nvidia_runtime_stops_the_hub() -> None:
    with pytest.raises(ConfigError) as refused:
        check_gpus(settings_with(1), NO_GPU_DAEMON)
    message = str(refused.value)
    assert message.startswith("image torch asks for GPUs, but Docker on this host has no NVIDIA runtime")
    assert "its runtimes: io.containerd.runc.v2, runc" in message
    assert "nvidia-ctk runtime configure --runtime=docker" in message


def test_a_gpu_choice_counts_as_asking_for_gpus() -> None:
    choice = {"choices": {"gpus": {"options": [0, 1]}}}
    assert gpu_problems(settings_with(1, image=choice), NO_GPU_DAEMON)
    none_offered = {"choices": {"gpus": {"options": [0]}}}
    assert gpu_problems(settings_with(0, image=none_offered), NO_GPU_DAEMON) == []
    assert gpu_problems(settings_with(0, image={}), NO_GPU_DAEMON) == []


def test_gpus_the_hub_cannot_count_are_explained() -> None:
    assert "spawner.gpus is 0: set it to the number of GPUs" in gpu_problems(settings_with(0), NVIDIA_DAEMON)[0]
    assert (
        "spawner.gpus is auto, but Docker does not list the host's GPUs"
        in (gpu_problems(settings_with("auto"), NVIDIA_DAEMON)[0])
    )


def test_a_host_with_the_nvidia_runtime_gets_an_allocator_over_its_gpus() -> None:
    assert check_gpus(settings_with(2), NVIDIA_DAEMON).ids == ("0", "1")
    assert check_gpus(settings_with("auto"), CDI_DAEMON).ids == ("0", "1")
    assert check_gpus(settings_with(0, image={}), NO_GPU_DAEMON).total == 0
    assert check_gpus(settings_with(2, gpu_sharing=True), NVIDIA_DAEMON).sharing
