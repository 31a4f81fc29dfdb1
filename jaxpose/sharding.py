"""Data parallelism: jit over a Mesh named 'data' with NamedSharding (axis types Auto).

Code is written for the global batch; each host feeds its slice of the batch with
`make_array_from_process_local_data`, and XLA partitions the computation (GSPMD). State is
replicated. No pmap anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import ml_collections as mlc
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxpose.types import PyTree


def maybe_initialize_distributed(mesh_cfg: mlc.ConfigDict) -> None:
  """Runs jax.distributed.initialize when the config asks for several processes (once).

  mesh.num_processes = 1: one process, nothing to do. N > 1 with mesh.coordinator_address
  ('host:port' of process 0) and mesh.process_id: explicit (GPU clusters, several processes on
  one machine). N > 1 or -1 without a coordinator address: JAX detects the cluster and this
  process's id (Cloud TPU pod slices, Slurm, Open MPI ...; -1 also detects the count), so
  mesh.process_id is not read.
  """
  n = mesh_cfg.num_processes
  if n == 1 or jax.distributed.is_initialized():
    return
  if mesh_cfg.coordinator_address:
    jax.distributed.initialize(
      coordinator_address=mesh_cfg.coordinator_address,
      num_processes=n,
      process_id=mesh_cfg.process_id,
    )
  else:
    jax.distributed.initialize(num_processes=None if n < 0 else n)


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh named 'data' over the first `num_devices` devices (default: all)."""
  n = num_devices or jax.device_count()
  return jax.make_mesh((n,), ('data',), axis_types=(AxisType.Auto,), devices=jax.devices()[:n])


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  """The sharding of a full copy on every device of `mesh`."""
  return NamedSharding(mesh, P())


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """The sharding of a global batch: leading (B) axis split over 'data', the rest replicated."""
  return NamedSharding(mesh, P('data'))


def replicate(tree: PyTree, mesh: jax.sharding.Mesh) -> PyTree:
  """`tree` (host or device arrays) copied onto every device of `mesh`."""
  return jax.device_put(tree, replicated(mesh))


def check_batch_size(global_batch: int, mesh: jax.sharding.Mesh, what: str = 'batch_size') -> None:
  """Raises ValueError (naming data.<what>) unless the global batch divides by the device count."""
  n = mesh.devices.size
  if global_batch % n:
    raise ValueError(f'data.{what}={global_batch} must be divisible by the number of devices ({n})')


def shard_batch(batch: Mapping[str, np.ndarray], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
  """Per-host numpy batch (leading axis = this host's b rows) -> global jax.Arrays (B = b x hosts
  rows, sharded over 'data'); nested dicts (two-domain batches) are sharded leaf by leaf."""
  sh = batch_sharding(mesh)
  put = lambda v: jax.make_array_from_process_local_data(sh, np.asarray(v))
  return jax.tree.map(put, dict(batch))  # nested batches too (two-domain methods: PoSynDA)
