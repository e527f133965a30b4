"""Resources chosen at start: only offered options, within the person's group maxima, in user_options' shape."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest
from multidict import MultiDict

from hub.config import ConfigError, ImageSpec, Settings, load_settings
from hub.errors import BadRequest, Forbidden
from hub.i18n import install as install_i18n
from hub.resource_config import memory_bytes
from hub.resources import Limits, fits, offered, options_from_form, resolve

CHOICES = {
    "mem_limit": {"options": ["1g", "2g", "4g"], "default": "2g"},
    "cpu_limit": {"options": [0.5, 1, 2], "default": 1},
    "gpus": {"options": [0, 1], "default": 0},
}
GROUP_LIMITS = {
    "students": {"mem_limit": "2g", "cpu_limit": 1, "gpus": 0},
    "staff": {"mem_limit": "4g", "cpu_limit": 2, "gpus": 1},
    "gpu-course": {"gpus": 1},
}
NOBODY: frozenset[str] = frozenset()
STUDENTS = frozenset({"students"})


def make_settings(**image: Any) -> Settings:
    lab = {"name": "jupyterlab", "display_name": "JupyterLab", "image": "lab:1", "choices": CHOICES, **image}
    fixed = {"name": "fixed", "display_name": "Fixed", "image": "fixed:1", "mem_limit": "2g", "cpu_limit": 1}
    bare = {"name": "bare", "display_name": "Bare", "image": "bare:1"}
    return Settings(images=[lab, fixed, bare], group_limits=GROUP_LIMITS)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


def image(settings: Settings, name: str = "jupyterlab") -> ImageSpec:
    found = settings.image(name)
    assert found is not None
    return found


def test_no_options_give_the_defaults(settings: Settings) -> None:
    assert resolve(image(settings), {}, NOBODY, False, settings) == Limits("2g", 1.0, 0)


def test_an_offered_choice_is_taken_as_the_api_or_the_form_sends_it(settings: Settings) -> None:
    lab = image(settings)
    from_api = resolve(
        lab, {"image": "jupyterlab", "mem_limit": "4g", "cpu_limit": 2, "gpus": 1}, NOBODY, False, settings
    )
    from_form = resolve(lab, {"mem_limit": "4g", "cpu_limit": "2", "gpus": "1"}, NOBODY, False, settings)
    from_jupyterhub_form = resolve(lab, {"mem_limit": ["4g"], "cpu_limit": ["2.0"]}, NOBODY, False, settings)
    assert from_api == from_form == Limits("4g", 2.0, 1)
    assert from_jupyterhub_form == Limits("4g", 2.0, 0)


def test_the_same_size_in_other_units_is_the_offered_option(settings: Settings) -> None:
    assert resolve(image(settings), {"mem_limit": "1024M"}, NOBODY, False, settings).mem_limit == "1g"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mem_limit": "8g"}, "Memory 8g is not offered for JupyterLab: choose 1g, 2g or 4g."),
        ({"mem_limit": "3g"}, "Memory 3g is not offered for JupyterLab: choose 1g, 2g or 4g."),
        ({"mem_limit": "lots"}, "Memory lots is not offered for JupyterLab: choose 1g, 2g or 4g."),
        ({"cpu_limit": "64"}, "CPUs 64 is not offered for JupyterLab: choose 0.5, 1 or 2."),
        ({"cpu_limit": "-1"}, "CPUs -1 is not offered for JupyterLab: choose 0.5, 1 or 2."),
        ({"cpu_limit": "nan"}, "CPUs nan is not offered"),
        ({"cpu_limit": "1e3"}, "CPUs 1e3 is not offered"),
        ({"gpus": "2"}, "GPUs 2 is not offered for JupyterLab: choose 0 or 1."),
        ({"gpus": "all"}, "GPUs all is not offered for JupyterLab: choose 0 or 1."),
        ({"gpus": "１"}, "GPUs １ is not offered"),  # a full-width digit
        ({"mem_limit": "9" * 400}, "is not offered"),
        ({"mem_limit": True}, "mem_limit must be one of the offered values"),
        ({"mem_limit": {"$gt": "1g"}}, "mem_limit must be one of the offered values"),
        ({"cpu_limit": float("inf")}, "cpu_limit must be one of the offered values"),
    ],
)
def test_a_value_not_offered_is_refused_and_named(settings: Settings, options: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        resolve(image(settings), options, NOBODY, False, settings)
    assert message in refused.value.user_message
    assert refused.value.status == 400
    assert len(refused.value.user_message) < 200


def test_an_image_without_a_choice_refuses_a_different_value(settings: Settings) -> None:
    fixed = image(settings, "fixed")
    assert resolve(fixed, {"mem_limit": "2g", "cpu_limit": "1", "gpus": "0"}, NOBODY, False, settings) == Limits(
        "2g", 1.0, 0
    )
    with pytest.raises(BadRequest, match=r"Fixed offers no choice of memory \(it gets 2g\)"):
        resolve(fixed, {"mem_limit": "4g"}, NOBODY, False, settings)
    with pytest.raises(BadRequest, match=r"Bare offers no choice of memory \(it has no limit\)"):
        resolve(image(settings, "bare"), {"mem_limit": "4g"}, NOBODY, False, settings)


def test_unknown_keys_of_user_options_are_left_alone(settings: Settings) -> None:
    options = {"image": "jupyterlab", "profile": "x", "env": {"A": "1"}, "mem_limit": ""}
    assert resolve(image(settings), options, NOBODY, False, settings) == Limits("2g", 1.0, 0)


def test_options_above_the_group_maximum_are_not_offered(settings: Settings) -> None:
    offers = {offer.key: offer for offer in offered(image(settings), STUDENTS, False, settings)}
    assert offers["mem_limit"].options == ("1g", "2g")
    assert offers["cpu_limit"].options == ("0.5", "1")
    assert offers["gpus"].options == ("0",)
    with pytest.raises(BadRequest, match="Memory 4g is not offered for JupyterLab: choose 1g or 2g."):
        resolve(image(settings), {"mem_limit": "4g"}, STUDENTS, False, settings)
    with pytest.raises(BadRequest, match="GPUs 1 is not offered for JupyterLab: choose 0."):
        resolve(image(settings), {"gpus": "1"}, STUDENTS, False, settings)


def test_the_most_generous_group_wins_and_a_missing_key_has_no_maximum(settings: Settings) -> None:
    both = frozenset({"students", "staff"})
    assert resolve(image(settings), {"mem_limit": "4g", "gpus": 1}, both, False, settings) == Limits("4g", 1.0, 1)
    # gpu-course sets only gpus: its members have no memory maximum, so students in it may take 4g.
    course = frozenset({"students", "gpu-course"})
    assert resolve(image(settings), {"mem_limit": "4g", "gpus": 1}, course, False, settings).mem_limit == "4g"


def test_admins_and_people_in_no_listed_group_get_every_option(settings: Settings) -> None:
    for groups, admin in ((STUDENTS, True), (frozenset({"chemistry"}), False), (NOBODY, False)):
        offers = {offer.key: offer.options for offer in offered(image(settings), groups, admin, settings)}
        assert offers == {"mem_limit": ("1g", "2g", "4g"), "cpu_limit": ("0.5", "1", "2"), "gpus": ("0", "1")}


def test_a_default_above_the_maximum_becomes_the_largest_allowed() -> None:
    settings = make_settings(choices={"mem_limit": {"options": ["1g", "2g", "4g"], "default": "4g"}})
    offer = offered(image(settings), STUDENTS, False, settings)[0]
    assert offer.default == "2g"
    assert resolve(image(settings), {}, STUDENTS, False, settings).mem_limit == "2g"


def test_an_image_with_nothing_within_the_maximum_cannot_be_started() -> None:
    settings = make_settings(choices={"mem_limit": {"options": ["4g", "8g"]}})
    with pytest.raises(Forbidden, match="needs more memory than your groups allow \\(at most 2g\\)"):
        resolve(image(settings), {}, STUDENTS, False, settings)
    assert not fits(image(settings), STUDENTS, False, settings)
    assert fits(image(settings), STUDENTS, True, settings)
    gpu_only = make_settings(choices=None, gpus=1)
    with pytest.raises(Forbidden, match="needs more gpus than your groups allow \\(at most 0\\)"):
        offered(image(gpu_only), STUDENTS, False, gpu_only)


def test_an_image_without_limits_gets_the_persons_maximum(settings: Settings) -> None:
    assert resolve(image(settings, "bare"), {}, STUDENTS, False, settings) == Limits("2g", 1.0, 0)
    assert resolve(image(settings, "bare"), {}, NOBODY, False, settings) == Limits(None, None, 0)


def test_all_gpus_is_within_a_maximum_only_when_the_host_has_that_many() -> None:
    settings = make_settings(choices={"gpus": {"options": [0, 1, "all"]}})
    staff = frozenset({"staff"})  # at most 1 GPU
    assert offered(image(settings), staff, False, settings, host_gpus=1)[0].options == ("0", "1", "all")
    assert offered(image(settings), staff, False, settings, host_gpus=4)[0].options == ("0", "1")
    assert offered(image(settings), staff, False, settings)[0].options == ("0", "1")  # host unknown
    assert resolve(image(settings), {"gpus": "all"}, NOBODY, False, settings).gpus == "all"


def test_limits_read_well() -> None:
    assert Limits("2g", 1.0, 1).describe() == "Memory 2g · 1 CPU · 1 GPU"
    assert Limits("512m", 0.5, "all").describe() == "Memory 512m · 0.5 CPUs · all GPUs"
    assert Limits().describe() == "No memory limit · no CPU limit"
    assert Limits("2g", 0.5, 0).as_user_options() == {"mem_limit": "2g", "cpu_limit": "0.5", "gpus": "0"}
    assert Limits("2g").mem_bytes == 2 * 1024**3
    assert Limits(cpu_limit=1.5).nano_cpus == 1_500_000_000


def test_the_form_gives_user_options_and_refuses_a_field_sent_twice() -> None:
    form = MultiDict([("image", "jupyterlab"), ("mem_limit", "2g"), ("_xsrf", "t")])
    assert options_from_form(form) == {"image": "jupyterlab", "mem_limit": "2g"}
    with pytest.raises(BadRequest, match="sent mem_limit 2 times"):
        options_from_form(MultiDict([("mem_limit", "1g"), ("mem_limit", "4g")]))


@pytest.mark.parametrize(
    "choices, problem",
    [
        ({"mem_limit": {"options": ["1g", "2g"], "default": "4g"}}, "the default 4g is not one of the options"),
        ({"mem_limit": {"options": ["1g", "1024m"]}}, "an option is listed twice"),
        ({"mem_limit": {"options": ["2 GB"]}}, "should match pattern"),
        ({"mem_limit": {"options": ["1m"]}}, "less than Docker's minimum of 6m"),
        ({"mem_limit": {"options": []}}, "at least 1 item"),
        ({"cpu_limit": {"options": [0.5, 1], "default": 4}}, "the default 4.0 is not one of the options"),
        ({"cpu_limit": {"options": [0]}}, "greater than 0"),
        ({"gpus": {"options": [0, "some"]}}, "gpus.options.1"),
        ({"gpus": {"options": [0, 1], "default": 2}}, "the default 2 is not one of the options"),
        ({"disk": {"options": ["1g"]}}, "is not a known setting"),
    ],
)
def test_a_bad_choice_stops_the_hub_with_its_key(tmp_path: Any, choices: dict[str, Any], problem: str) -> None:
    import yaml

    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump({"images": [{"name": "lab", "image": "lab:1", "choices": choices}]}))
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "images.0.choices" in str(raised.value)
    assert problem in str(raised.value)


def test_a_fixed_value_and_a_choice_of_it_are_refused(tmp_path: Any) -> None:
    import yaml

    config = tmp_path / "hub.yaml"
    image = {"name": "lab", "image": "lab:1", "mem_limit": "2g", "choices": {"mem_limit": {"options": ["1g"]}}}
    config.write_text(yaml.safe_dump({"images": [image]}))
    with pytest.raises(ConfigError, match="images.0: set either mem_limit or choices.mem_limit, not both"):
        load_settings(config)


def test_memory_sizes_parse() -> None:
    assert memory_bytes("512m") == 512 * 1024**2
    assert memory_bytes("2G") == 2 * 1024**3
    assert memory_bytes("1073741824") == 1024**3
    assert memory_bytes("2gb") is None and memory_bytes("") is None and memory_bytes("-1g") is None


def test_the_partial_shows_the_offered_selects_with_the_default_and_free_gpus(settings: Settings) -> None:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("hub"), autoescape=True)
    install_i18n(environment)  # the hub's pages use gettext (hub/i18n.py); here in English
    partial = environment.get_template("_resource_choices.html")
    lab = image(settings)
    html = partial.render(
        image=lab,
        offers=offered(lab, STUDENTS, False, settings),
        selected=True,
        gpus={"free": 1, "total": 2, "sharing": False},
    )
    assert 'name="mem_limit"' in html and 'name="cpu_limit"' in html and 'name="gpus"' in html
    assert '<option value="2g" selected>' in html and 'value="4g"' not in html
    assert "1 of 2 GPUs free" in html
    assert "disabled" not in html
    other = partial.render(image=lab, offers=offered(lab, NOBODY, False, settings), selected=False, gpus=None)
    assert "disabled" in other and 'value="4g"' in other and "GPUs free" not in other
