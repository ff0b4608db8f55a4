"""Exceptions and warnings raised by hepprob.

Every error hepprob raises on bad input is a :class:`HepprobError`; the specific
subclasses are also ``ValueError`` so that ``except ValueError`` keeps working.
The CLI is the only place that turns them into a one-line message.
"""

from __future__ import annotations

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "FitError",
    "HepprobError",
    "HepprobWarning",
    "ModelError",
    "ParameterError",
    "SpecError",
]


class HepprobError(Exception):
    """Base class of every error hepprob raises on purpose."""


class SpecError(HepprobError, ValueError):
    """A workspace or model specification is invalid.

    Args:
        message: what is wrong.
        path: the JSON path at fault, e.g. ``channels[0].samples[1].data``.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class ModelError(HepprobError, ValueError):
    """A model function cannot be read (unknown site, no observed data, ...)."""


class DataError(HepprobError, ValueError):
    """Observed data are unusable (empty, NaN, negative counts, wrong length)."""


class ParameterError(HepprobError, ValueError):
    """A parameter value, bound or name is invalid."""


class FitError(HepprobError, RuntimeError):
    """A fit could not be carried out at all (not merely unconverged)."""


class HepprobWarning(UserWarning):
    """Base class of hepprob's warnings."""


class ConvergenceWarning(HepprobWarning):
    """A minimisation or sampler did not converge; its result is flagged."""
