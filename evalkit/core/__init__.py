"""The core: typed records, statistics, the store and its journals, run-directory locks, plugin
loading, pid liveness and size limits. Imports only evalkit.config."""
