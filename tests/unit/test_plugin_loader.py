"""Loading plugins from the `plugins` setting: what loads, and the start-up error for what cannot."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from paygate.config import load_settings
from paygate.config_plugins import PluginSpec
from paygate.plugins.loader import PluginError, load_all, load_one
from tests.plugin_samples import INSTANCE, Configurable

S = "tests.plugin_samples"


def spec(module: str, **extra: object) -> PluginSpec:
    return PluginSpec.model_validate({"module": module, **extra})


def test_a_class_is_built_with_its_options_and_its_hooks_and_limits_are_known() -> None:
    loaded = load_one(spec(f"{S}:Configurable", options={"surcharge": 7}, timeoutMs=250))
    assert isinstance(loaded.plugin, Configurable) and loaded.plugin.surcharge == 7
    assert (loaded.name, loaded.version, list(loaded.hooks)) == ("configurable", "0.0.0", ["transform_price"])
    assert loaded.timeout == 0.25


def test_an_instance_is_used_as_it_is_and_its_own_timeout_applies_without_one_in_the_config() -> None:
    assert load_one(spec(f"{S}:INSTANCE")).plugin is INSTANCE
    assert load_one(spec(f"{S}:Broken")).timeout == 0.05  # its timeout_ms
    assert load_one(spec(f"{S}:Recorder")).timeout == 1.0  # the default


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("tests.no_such_module:Thing", "module 'tests.no_such_module' not found"),
        (f"{S}:Missing", "has no attribute 'Missing'"),
        (f"{S}:NOT_A_PLUGIN", "not a plugin (it has no `name`"),
        (f"{S}:NoHooks", "defines none of the hooks"),
        (f"{S}:SyncHook", "hook before_gate must be an `async def`"),
        (f"{S}:BadName", "must be 1-64 of a-z 0-9"),
        (f"{S}:Explodes", "building it failed: RuntimeError: cannot build"),
        ("no-such-installed-plugin", "no installed plugin has this name"),
    ],
)
def test_what_cannot_load_says_which_entry_and_why(module: str, message: str) -> None:
    with pytest.raises(PluginError) as caught:
        load_one(spec(module))
    assert f"plugin {module!r}" in str(caught.value) and message in str(caught.value)


def test_options_for_an_instance_are_refused() -> None:
    with pytest.raises(PluginError, match="options given, but it is a plugin object"):
        load_one(spec(f"{S}:INSTANCE", options={"surcharge": 1}))


def test_two_plugins_with_one_name_stop_the_start() -> None:
    with pytest.raises(PluginError, match="another plugin is already named 'recorder'"):
        load_all([spec(f"{S}:Recorder"), spec(f"{S}:SameNameAsRecorder")])


def test_the_setting_takes_strings_objects_and_a_comma_list_and_the_sources_add_up(tmp_path: object) -> None:
    settings = load_settings(
        {"plugins": [f"{S}:Recorder"]},
        environ={"PAYGATE_PLUGINS": f"{S}:Pricing, {S}:Recorder"},
    )
    assert [p.module for p in settings.plugins] == [f"{S}:Pricing", f"{S}:Recorder"]
    obj = load_settings({"plugins": [{"module": "example", "options": {"tool": "x"}, "timeoutMs": 10}]}, environ={})
    assert obj.plugins[0].options == {"tool": "x"} and obj.plugins[0].timeout_ms == 10


@pytest.mark.parametrize(
    "value",
    [[{"module": "x:y", "unknown": 1}], [{"module": "x:y", "timeoutMs": 0}], ["not a spec"], [{"options": {}}], [3]],
)
def test_a_wrong_entry_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ValidationError):
        load_settings({"plugins": value}, environ={})


def test_plugins_is_no_longer_a_later_key() -> None:
    from paygate.validation import LATER_KEYS

    assert "plugins" not in LATER_KEYS


def test_get_config_shows_a_plugins_option_names_never_their_values() -> None:
    from paygate.admin.config_view import MASK, masked_settings

    settings = load_settings(
        {"server": "x", "plugins": [{"module": "example", "options": {"tool": "echo", "apiToken": "s3cr3t"}}]},
        environ={},
    )
    shown = masked_settings(settings)["plugins"]
    assert shown == [{"module": "example", "options": {"tool": MASK, "apiToken": MASK}, "timeoutMs": None}]
