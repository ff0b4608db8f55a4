"""Type aliases shared across hepprob."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

__all__ = ["Array", "ArrayLike", "PRNGKey", "Params"]

Array = jax.Array
ArrayLike = Any  # anything jnp.asarray accepts: arrays, scalars, nested lists
PRNGKey = jax.Array
Params = Mapping[str, "Array | np.ndarray | float"]
