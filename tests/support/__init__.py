"""Helpers and fixtures that tests in several folders share, each written once.

Import helpers as ``from support.manifests import tfjob_yaml``: pytest puts ``tests/`` on
``sys.path`` because the root ``tests/conftest.py`` has no package around it (rootdir-based
"prepend" import mode). The fixtures are registered for every folder by the root conftest's
``pytest_plugins``, so tests request them by name without importing anything.
"""
