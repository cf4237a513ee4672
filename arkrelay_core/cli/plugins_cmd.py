"""`arkrelay plugins`: what is installed, what the config enables, what failed to load."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Config, ConfigError, load_config
from ..errors import PluginError
from ..plugins import load_plugins
from .common import config_option, resolve_config_path

__all__ = ["plugins"]


def _enabled_pairs(config: Config) -> set[tuple[str, str]]:
    pairs = {("transport", section.plugin) for section in config.transports.values()}
    pairs |= {(role, section.plugin) for role, section in config.backends.items()}
    if config.settlement is not None:
        pairs.add(("settlement", config.settlement.plugin))
    return pairs


@click.command("plugins")
@config_option
def plugins(config_path: Path | None) -> None:
    """List installed plugins: distribution, version, name, role, enabled or not."""
    registry = load_plugins()
    path = resolve_config_path(config_path)
    config_problem = None
    enabled: set[tuple[str, str]] = set()
    try:
        enabled = _enabled_pairs(load_config(path, settings_resolver=registry.settings_type))
    except (ConfigError, PluginError, OSError) as exc:
        config_problem = str(exc)

    rows = [
        (
            p.distribution,
            p.distribution_version,
            p.spec.name,
            p.spec.role,
            "enabled" if (p.spec.role, p.spec.name) in enabled else "disabled",
        )
        for p in sorted(registry.installed, key=lambda p: (p.spec.role, p.spec.name))
    ]
    rows += [(f.distribution, f.version, f.entry_point, "?", "FAILED") for f in registry.failures]
    header = ("DISTRIBUTION", "VERSION", "NAME", "ROLE", "STATUS")
    if len(rows) == 0:
        click.echo("no arkrelay plugins installed")
    else:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            click.echo(
                "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            )
    for failure in registry.failures:
        click.echo(f"failed to load {failure.describe()}", err=True)
    if config_problem is not None:
        raise click.ClickException(config_problem)
