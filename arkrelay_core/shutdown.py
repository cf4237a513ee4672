"""Turn SIGINT / SIGTERM into a clean cancellation of the root nursery."""

from __future__ import annotations

import logging
import signal

import trio

__all__ = ["cancel_on_signals"]

log = logging.getLogger(__name__)


async def cancel_on_signals(
    cancel_scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Cancel ``cancel_scope`` on the first SIGINT or SIGTERM.

    Cancelling lets every task run its cleanup (a daemon stops, a connection closes),
    where a KeyboardInterrupt would tear through whatever it lands in.
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            log.info("%s received: shutting down", signal.Signals(signum).name)
            cancel_scope.cancel()
            return
