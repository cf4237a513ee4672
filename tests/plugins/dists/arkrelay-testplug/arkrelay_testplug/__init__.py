"""A loopback transport: what it publishes comes back to the gateway as inbound."""

from __future__ import annotations

import msgspec
import trio

from arkrelay_core.interfaces import InboundEvent, PluginSpec, PublishResult
from arkrelay_core.plugins import hookimpl


class LoopbackSettings(msgspec.Struct, forbid_unknown_fields=True):
    label: str = "loop"
    echo: bool = True


class LoopbackTransport:
    features = frozenset({"echo"})

    def __init__(self, settings: LoopbackSettings, context) -> None:
        self.settings = settings
        self.context = context
        self._send: trio.MemorySendChannel[InboundEvent] | None = None
        self.published = 0

    async def serve(self, inbound, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self._send = inbound
        task_status.started()
        await trio.sleep_forever()

    async def publish(self, event) -> PublishResult:
        self.published += 1
        if self.settings.echo and self._send is not None:
            await self._send.send(InboundEvent(event=event, source=self.settings.label))
        return PublishResult(accepted=(self.settings.label,))

    def statistics(self) -> dict:
        return {"published": self.published}


@hookimpl
def arkrelay_register_transports():
    return [
        PluginSpec(
            name="loopback",
            version="0.3.0",
            role="transport",
            settings_type=LoopbackSettings,
            factory=LoopbackTransport,
            description="echoes published events back as inbound",
        )
    ]


@hookimpl
def arkrelay_register_commands(cli):
    import click

    @click.command("loopback-hello")
    @click.argument("name")
    def hello(name: str) -> None:
        """Greets NAME (a command a plugin adds to `arkrelay`)."""
        click.echo(f"hello {name} from the loopback plugin")

    cli.add_command(hello)
