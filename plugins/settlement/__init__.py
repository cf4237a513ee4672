"""Lets pytest import this plugin's tests as ``settlement.tests``.

The core and the other plugins also have a ``tests`` package; two bare ``tests`` packages
collide when pytest collects them in one run.
"""
