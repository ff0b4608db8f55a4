"""Bayesian inference (being written)."""

from __future__ import annotations

__all__ = ["mcmc"]


def mcmc(*args, **kwargs):  # placeholder until written
    raise NotImplementedError
