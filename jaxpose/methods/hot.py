"""HoT as a method (`config.method.name = 'hot'`): the TPC loss on kept frames and the centre frame.

Paper: Li, Liu, Liu, Wang, Cai, Sebe, "Hourglass Tokenizer for Efficient Transformer-Based 3D Human
Pose Estimation", CVPR 2024, arXiv:2311.12028.
Official code: github.com/NationalGAILab/HoT at commit 873b5bda0d38cc30ca808c519c87d2e1f22a3292
(`main_mixste{,_tpc}.py`; MIT). Written from research/hot.md; no code copied.

The networks are `jaxpose.models.hot` (HoT/TPC around a registry lifter); the pruning and recovery
blocks (DPC-kNN, TPC, TRA) are `jaxpose.models.layers.token_pruning`.

* `loss_fn`: the supervised loss with a fresh density jitter per step (RNG stream 'hot'); for TPC
  (seq2frame) models the loss uses the kept frames of the targets.
* `predict`: the flip pass reuses the kept indices of the plain pass and predicts the centre
  frame, as the official TPC test does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc

from jaxpose import losses
from jaxpose.geometry import skeleton as skel
from jaxpose.methods.base import Method
from jaxpose.methods.supervised import masked_mean
from jaxpose.models.layers.token_pruning import RNG_STREAM, gather_frames

# --- The method (config.method.name = 'hot') -------------------------------------------------


def _kept_targets(batch: Mapping[str, jax.Array], index: jax.Array, frames: int):
  """The batch at the kept frames, for the loss of a seq2frame (TPC) model.

  seq2seq batches: every per-frame entry (second axis of length `frames`) is gathered at `index`.
  'center' windows with `data.window_targets`: the window's 3D (`pose3d_cam_window`) becomes the
  target, and every window frame of a valid row counts (edge-padded frames included, as the
  official chunked training data does).
  """
  batch = dict(batch)
  if 'pose3d_cam_window' in batch:
    batch['pose3d_cam'] = batch.pop('pose3d_cam_window')
    if 'valid' in batch:
      rows = batch['valid'].reshape(index.shape[0], -1).any(axis=-1)
      batch['valid'] = jnp.broadcast_to(rows[:, None], (index.shape[0], frames))
  if batch['pose3d_cam'].shape[1] != frames:
    raise ValueError(
      "HoT TPC training needs the whole window's 3D: data.mode='seq2seq', or 'center' windows "
      f'with data.window_targets=True; got pose3d_cam {batch["pose3d_cam"].shape} for T={frames}'
    )
  return {
    k: gather_frames(v, index) if getattr(v, 'ndim', 0) >= 2 and v.shape[1] == frames else v
    for k, v in batch.items()
  }


def loss_fn(model, params, model_state, batch, rng, config: mlc.ConfigDict):
  """Supervised loss with a fresh density jitter per step (stream 'hot').

  Seq2frame (TPC) models output only the K kept frames; the loss uses the targets at the kept
  indices, as `main_mixste_tpc.py` does (`_kept_targets`: seq2seq batches, or 'center' windows
  with `data.window_targets`).

  Returns:
    (loss, (scalars, new_model_state)), like `methods.supervised.loss_fn`.
  """
  drop, path, hot = jax.random.split(rng, 3)
  variables = {'params': params, **model_state}
  rngs = {'dropout': drop, 'drop_path': path, RNG_STREAM: hot}
  kw = dict(train=True, rngs=rngs, return_index=True)
  x = batch['kp2d_norm']
  if model_state:
    (pred, index), new_state = model.apply(variables, x, mutable=list(model_state), **kw)
  else:
    (pred, index), new_state = model.apply(variables, x, **kw), model_state
  if pred.shape[1] != x.shape[1]:  # seq2frame: the loss is on the kept frames
    batch = _kept_targets(batch, index, x.shape[1])
  total, parts = losses.combine(dict(config.method.loss), pred, batch)
  w = (
    batch['valid'].any(axis=-1).astype(pred.dtype) if 'valid' in batch else jnp.ones(pred.shape[0])
  )
  loss = masked_mean(total, w)
  scalars = {'loss': loss, **{f'loss/{k}': masked_mean(v, w) for k, v in parts.items()}}
  return loss, (scalars, new_state)


def predict(
  model, variables: dict[str, Any], kp2d_norm: jax.Array, config: mlc.ConfigDict
) -> jax.Array:
  """kp2d_norm (B, T, J, C) -> pose3d: (B, T, J, 3) for HoT, (B, 1, J, 3) (the centre frame) for TPC.

  The flip test (config.eval.flip_test) averages with the un-flipped prediction of the flipped
  input. HoT models select tokens again for the flipped input (the official `main_mixste.py`);
  TPC models reuse the plain pass's kept frames (`main_mixste_tpc.py`).
  """
  t = kp2d_norm.shape[1]
  pred, index = model.apply(variables, kp2d_norm, train=False, return_index=True)
  seq2frame = pred.shape[1] != t
  if config.eval.flip_test:
    sk = config.data.skeleton
    reuse = {'index': index} if seq2frame else {}
    pred_f = model.apply(variables, skel.flip_pose(kp2d_norm, sk), train=False, **reuse)
    pred = 0.5 * (pred + skel.flip_pose(pred_f, sk))
  if seq2frame:  # the slot holding the centre frame (always kept by TPC)
    slot = jnp.argmax(index == (t - 1) // 2, axis=1)
    pred = jnp.take_along_axis(pred, slot[:, None, None, None], axis=1)
  return pred


METHOD = Method(loss_fn=loss_fn, predict=predict)
