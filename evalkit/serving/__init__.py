"""Starting, recording, probing and stopping model servers, with no knowledge of any engine.

- ``request.py``: ``ServeRequest``, every ``evalkit serve`` setting and its default.
- ``state.py``: the state files (one ``ServerHandle`` per recorded server).
- ``processes.py``: ``/proc``, process groups, start-time and command-line identity, TERM -> KILL.
- ``probe.py``: HTTP probes of an OpenAI-compatible endpoint, and free ports.
- ``checkpoint.py``: what identifies a checkpoint's content (hashes) and its default served name.
- ``launch.py``: start processes detached, wait until each is ready, record them; stop them.
- ``plan.py``: a ``ServeRequest`` -> the processes to start, asking the backend registry
  (``evalkit.serving.backends``) what each engine needs; ``serve``, ``server_status``, ``endpoint_identity``.

Engines live in ``evalkit.serving.backends``, one file each.
"""
