"""Fails on import, the way a plugin with a missing dependency does."""

raise RuntimeError("the broken plugin cannot load: libfoo missing")
