"""The HTTP side of the gateway: a read-only API, ``/admin``, ``/metrics`` and the OpenAPI
document, served by hypercorn's trio worker in the gateway's nursery (``[http]``)."""

from .server import HttpServer

__all__ = ["HttpServer"]
