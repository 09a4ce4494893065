"""``ServeRequest``: every setting of ``evalkit serve`` and its one default (defined in evalkit.config).

The CLI builds its flags from its fields (name, type, default and the ``help`` in each field's
metadata), so ``--help`` shows exactly these defaults.
"""

from __future__ import annotations

# Its home is evalkit.config, beside every other config type; this module keeps the old import path.
from evalkit.config import API_KEY_ENV, ENGINE_PYTHON_ENV, ServeRequest

__all__ = ["API_KEY_ENV", "ENGINE_PYTHON_ENV", "ServeRequest"]
