"""Array-namespace dispatch: numpy in -> numpy out (host pipelines, float64 kept), jax in -> jnp.

Host-side data code (grain workers, TFDS builders) calls geometry helpers on numpy arrays and must not
get device arrays back or lose float64; traced or device inputs go through jax.numpy so the same
functions work under jit and vmap.
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np


def namespace(*xs) -> types.ModuleType:
  """Returns `jax.numpy` if any argument is a jax array (tracers included), else `numpy`."""
  return jnp if any(isinstance(x, jax.Array) for x in xs) else np
