"""The local backend: every replica is a process on this machine (see docs/local.md)."""

from .backend import LocalBackend

__all__ = ["LocalBackend"]
