from __future__ import annotations

from dataclasses import fields

import pytest

from graph.context import ConfigError, Context, build_context, load_config_file


def test_every_setting_has_a_description():
    for f in fields(Context):
        assert f.metadata.get("description"), f.name


def test_layers_defaults_then_file_then_flags():
    ctx = build_context({"num_lanes": 3, "inner_steps": 4}, {"inner_steps": "5", "catalog_fallback": "false"})
    assert (ctx.num_lanes, ctx.inner_steps, ctx.catalog_fallback) == (3, 5, False)
    assert ctx.refine_steps == Context().refine_steps


@pytest.mark.parametrize("overrides, needle", [
    ({"num_lane": 2}, "Unknown setting 'num_lane'"),
    ({"num_lanes": "two"}, "not a valid int"),
    ({"num_lanes": 50}, "out of bounds"),
    ({"script_timeout_s": 0}, "out of bounds"),
    ({"catalog_fallback": "maybe"}, "not a valid bool"),
])
def test_bad_settings_are_named(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        build_context({}, overrides)


def test_config_files(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("num_lanes = 1\nrefine_steps = 2\n")
    assert build_context(load_config_file(toml)).refine_steps == 2
    bad = tmp_path / "c.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config_file(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")


def test_readme_documents_every_setting():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    missing = [f.name for f in fields(Context) if f"`{f.name}`" not in readme]
    assert missing == []


def test_every_setting_is_in_exactly_one_group_and_the_help_lists_them():
    from typer.testing import CliRunner

    from graph.cli import app
    from graph.context import SETTING_GROUPS

    grouped = [name for names in SETTING_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(f.name for f in fields(Context))  # each once, none left out
    shown = " ".join(CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output.split())
    for group, names in SETTING_GROUPS.items():
        assert f"{group}: {', '.join(names)}" in shown


def test_sandbox_limits_have_one_default():
    from runtime.sandbox import Limits
    ctx = Context()
    assert (ctx.script_max_processes, ctx.script_max_file_mb, ctx.script_max_disk_mb) == (
        Limits.max_processes, Limits.max_file_mb, Limits.max_disk_mb)
