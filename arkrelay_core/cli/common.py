"""What several commands share: finding and loading the config and the plugins."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..config import DEFAULTS_SOURCE, Config, ConfigError, load_config, load_config_text
from ..config.embedded import embedded_config_text
from ..errors import PluginError
from ..plugins import PluginRegistry, load_plugins

__all__ = ["config_option", "load_everything", "resolve_config_path"]

CONFIG_ENV = "ARKRELAY_CONFIG"

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"TOML config file (default: ${CONFIG_ENV}, else the embedded defaults).",
)


def resolve_config_path(config_path: Path | None) -> Path | None:
    if config_path is not None:
        return config_path
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else None


def load_everything(config_path: Path | None) -> tuple[Config, PluginRegistry]:
    """Plugins first (their settings types validate the config), then the config.

    Errors become one clean line on stderr and exit status 1.
    """
    registry = load_plugins()
    path = resolve_config_path(config_path)
    if path is not None and not path.is_file():
        raise click.ClickException(f"{path}: no such config file")
    try:
        if path is None:
            config = embedded_config(registry)
        else:
            config = load_config(path, settings_resolver=registry.settings_type)
    except (ConfigError, PluginError) as exc:
        raise click.ClickException(str(exc)) from exc
    return config, registry


def embedded_config(registry: PluginRegistry) -> Config:
    """The embedded defaults with every reference plugin that is installed."""

    def installed(role: str, name: str) -> bool:
        return name in registry.names(role)

    text, missing = embedded_config_text(installed)
    if missing:
        click.echo(
            f"embedded defaults: not installed, left out: {', '.join(missing)} "
            "(install the workspace with `uv sync --all-packages`)",
            err=True,
        )
    return load_config_text(
        text, source=DEFAULTS_SOURCE, settings_resolver=registry.settings_type, base_dir=Path.cwd()
    )
