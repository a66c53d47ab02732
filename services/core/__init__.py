"""Shared wiring of every flowkeeper process: settings, Redis, key names, the
event stream, and the store of runs and deployments.

It imports no process (nothing from services.api, .engine, .worker, ...), and
flows/ may import it.
"""
