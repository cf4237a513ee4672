"""`arkrelay plugins` and `arkrelay run` with real plugin distributions installed."""

from pathlib import Path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_installed_plugin_is_listed_disabled_until_config_names_it(arkrelay, good_site, tmp_path):
    listed = arkrelay("plugins", site=good_site)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["DISTRIBUTION", "VERSION", "NAME", "ROLE", "STATUS"]
    assert ["arkrelay-testplug", "0.3.0", "loopback", "transport", "disabled"] in rows

    config = _write(tmp_path / "gw.toml", '[transport.loopback]\nlabel = "l1"\n')
    listed = arkrelay("plugins", "--config", str(config), site=good_site)
    assert listed.returncode == 0, listed.stderr
    assert ["arkrelay-testplug", "0.3.0", "loopback", "transport", "enabled"] in [
        line.split() for line in listed.stdout.splitlines()
    ]


def test_workspace_plugins_are_installed_but_disabled_by_default(arkrelay):
    listed = arkrelay("plugins")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert ["arkrelay-nostr", "endpoint", "transport", "disabled"] in [
        [r[0], r[2], r[3], r[4]] for r in rows
    ]
    assert all(row[-1] == "disabled" for row in rows)


def test_plugin_that_raises_on_import_is_reported_by_name(arkrelay, plugin_site):
    listed = arkrelay("plugins", site=plugin_site)
    assert listed.returncode == 0
    assert ["arkrelay-brokenplug", "0.1.0", "broken", "?", "FAILED"] in [
        line.split() for line in listed.stdout.splitlines()
    ]
    assert (
        "failed to load arkrelay-brokenplug 0.1.0 (entry point 'broken'): "
        "RuntimeError: the broken plugin cannot load: libfoo missing"
    ) in listed.stderr
    # The healthy plugin beside it still loads.
    assert "loopback" in listed.stdout


def test_gateway_refuses_to_start_with_a_broken_plugin_enabled(arkrelay, plugin_site, tmp_path):
    config = _write(tmp_path / "gw.toml", "[transport.broken]\n")
    result = arkrelay("run", "--check", "--config", str(config), site=plugin_site)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert message.startswith(
        f"Error: {config}: transport.broken: no installed transport plugin named 'broken' "
        "(installed: "
    )
    assert "loopback" in message.split("(installed: ")[1].split(")")[0]
    assert message.endswith(
        "; failed to load: arkrelay-brokenplug 0.1.0 (entry point 'broken'): "
        "RuntimeError: the broken plugin cannot load: libfoo missing"
    )
    assert len(message.splitlines()) == 1
    assert "gateway running" not in result.stdout


def test_gateway_starts_with_the_enabled_plugin(arkrelay, good_site, tmp_path):
    config = _write(
        tmp_path / "gw.toml",
        '[gateway]\ndata_dir = "state"\n\n[transport.loopback]\nlabel = "l1"\n',
    )
    result = arkrelay("run", "--check", "--config", str(config), site=good_site)
    assert result.returncode == 0, result.stderr
    assert "transports   loopback" in result.stdout
    assert "gateway running" in result.stdout
    assert (tmp_path / "state" / "gateway.key").exists()


def test_plugin_settings_typo_is_one_line_naming_file_key_and_suggestion(
    arkrelay, good_site, tmp_path
):
    config = _write(tmp_path / "gw.toml", '[transport.loopback]\nlabell = "x"\n')
    result = arkrelay("config", "check", str(config), site=good_site)
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert error_lines == [
        f"Error: {config}: transport.loopback.labell: unknown key (did you mean 'label'?)"
    ]


def test_a_plugin_adds_a_command_that_is_listed_completed_and_run(arkrelay, good_site):
    helped = arkrelay("--help", site=good_site)
    assert helped.returncode == 0, helped.stderr
    listed = [line.split()[0] for line in helped.stdout.split("Commands:")[1].splitlines() if line]
    assert "loopback-hello" in listed
    assert "demo" in listed  # the workspace's wallet adds it the same way
    ran = arkrelay("loopback-hello", "ann", site=good_site)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "hello ann from the loopback plugin\n"
    assert "loopback-hello" not in arkrelay("--help").stdout


def test_plugin_commands_are_offered_by_shell_completion(arkrelay, good_site, monkeypatch):
    monkeypatch.setenv("_ARKRELAY_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "arkrelay loop")
    monkeypatch.setenv("COMP_CWORD", "1")
    completed = arkrelay(site=good_site)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["plain,loopback-hello"]
