"""Operator configuration: one TOML file composing the gateway and its plugins."""

from .load import effective_config, load_config, load_config_text
from .model import (
    BACKEND_ROLES,
    DEFAULTS_SOURCE,
    GBTC_ASSET_ID,
    NETWORKS,
    PLUGIN_ROLES,
    AssetListing,
    CeremonySettings,
    Config,
    ConfigError,
    GatewaySettings,
    HttpSettings,
    Network,
    OutboxSettings,
    PluginSection,
    SettingsResolver,
    UnknownPluginError,
)
from .values import Duration, HostPort, Secret

__all__ = [
    "BACKEND_ROLES",
    "DEFAULTS_SOURCE",
    "GBTC_ASSET_ID",
    "NETWORKS",
    "PLUGIN_ROLES",
    "AssetListing",
    "CeremonySettings",
    "Config",
    "ConfigError",
    "Duration",
    "GatewaySettings",
    "HostPort",
    "HttpSettings",
    "Network",
    "OutboxSettings",
    "PluginSection",
    "Secret",
    "SettingsResolver",
    "UnknownPluginError",
    "effective_config",
    "load_config",
    "load_config_text",
]
