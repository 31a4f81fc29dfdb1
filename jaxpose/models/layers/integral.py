"""Integral (soft-argmax) regression over per-joint 3-D heatmap volumes.

Sun, Xiao, Liang, Wei, "Integral Human Pose Regression", ECCV 2018 (arXiv:1711.08229), in the
form EpipolarPose uses (github.com/mkocabas/EpipolarPose at 299ccb0, `lib/core/integral_loss.py`
`softmax_integral_tensor`; research/epipolarpose.md §2, §10.1):

  p = softmax over all D*H*W voxels of a joint's volume,
  x = sum(p * i_x) / W - 0.5,  y = sum(p * i_y) / H - 0.5,  z = sum(p * i_z) / D - 0.5,

with voxel indices i = 0..N-1 and **no** half-voxel (+0.5) offset, so coordinates lie in
[-0.5, 0.5). The network's last convolution has J*D channels ordered joint-major (channel
j * D + d), i.e. a torch (B, J*D, H, W) tensor reshaped to (B, J, D, H, W) = (z, y, x).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def channels_to_volume(x: jax.Array, num_joints: int) -> jax.Array:
  """(B, H, W, J*D) NHWC head output -> (B, J, D, H, W) logits volume (joint-major channels)."""
  b, h, w, c = x.shape
  if c % num_joints:
    raise ValueError(f'channels {c} are not a multiple of num_joints {num_joints}')
  return jnp.transpose(x.reshape(b, h, w, num_joints, c // num_joints), (0, 3, 4, 1, 2))


def softmax_integral_3d(logits: jax.Array) -> jax.Array:
  """Soft-argmax of per-joint volumes.

  Args:
    logits: (B, J, D, H, W) unnormalised scores (z, y, x axes).

  Returns:
    (B, J, 3) float32 (x, y, z) normalised coordinates in [-0.5, 0.5): index / size - 0.5.
  """
  b, j, d, h, w = logits.shape
  p = jax.nn.softmax(logits.reshape(b, j, d * h * w).astype(jnp.float32), axis=-1)
  p = p.reshape(b, j, d, h, w)
  px = jnp.sum(p, axis=(2, 3))  # (B, J, W)
  py = jnp.sum(p, axis=(2, 4))  # (B, J, H)
  pz = jnp.sum(p, axis=(3, 4))  # (B, J, D)
  x = jnp.sum(px * jnp.arange(w, dtype=jnp.float32), axis=-1) / w - 0.5
  y = jnp.sum(py * jnp.arange(h, dtype=jnp.float32), axis=-1) / h - 0.5
  z = jnp.sum(pz * jnp.arange(d, dtype=jnp.float32), axis=-1) / d - 0.5
  return jnp.stack([x, y, z], axis=-1)
