"""(being written)."""

from __future__ import annotations

__all__ = ["q0", "qmu", "qmu_tilde", "tmu", "tmu_tilde"]


def q0(*args, **kwargs):  # placeholder until written
    raise NotImplementedError


def qmu(*args, **kwargs):  # placeholder until written
    raise NotImplementedError


def qmu_tilde(*args, **kwargs):  # placeholder until written
    raise NotImplementedError


def tmu(*args, **kwargs):  # placeholder until written
    raise NotImplementedError


def tmu_tilde(*args, **kwargs):  # placeholder until written
    raise NotImplementedError
