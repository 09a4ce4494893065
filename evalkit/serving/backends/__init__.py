"""Engines as backends: one file per engine (``llamacpp``, ``vllm``, ``sglang``, ``router``), each a
class following ``base.Backend`` and registered with ``@register_backend``; ``--backend
module:attr`` loads one defined outside evalkit.

This file is the registry's list of built-in engines: importing it (which importing any module of
the package does first) imports each engine, which registers itself in ``base.BACKENDS``. The base
imports none of them. The names below are the package's public face, defined in ``base`` and
``router``.
"""

from __future__ import annotations

from evalkit.serving.backends.base import (BACKENDS, NEEDS_KEY, Backend, Listener, ServerBackend, backend_names,
                                           choose_backend, cuda_gpus_visible, default_concurrency, get_backend,
                                           probe_status, register_backend, reported_identity)
from evalkit.serving.backends.router import served_models

# The built-in engines, each registered as its module is imported (add a new engine's module here).
from evalkit.serving.backends import llamacpp, router, sglang, vllm  # noqa: E402,F401

__all__ = ["BACKENDS", "NEEDS_KEY", "Backend", "Listener", "ServerBackend", "backend_names", "choose_backend",
           "cuda_gpus_visible", "default_concurrency", "get_backend", "llamacpp", "probe_status", "register_backend",
           "reported_identity", "router", "served_models", "sglang", "vllm"]
