"""MPM masked pose modelling: the pretext losses, fine-tuning, completion (`method.name = 'mpm'`).

Paper: Zhang et al., "A Unified 2D-3D Human Pose Representation via Masked Pose Modeling",
arXiv:2306.17201. Official code: github.com/vvirgooo2/MPM at commit
47ceae47d75a80ca7a20dcf90371e4638669e34c (`model/MPMLift.py: MPMmask2, MPMmask`,
`trainutils/pretrain_epoch.py`, `trainer.py`). No licence; written from research/mpm.md.

The networks are `jaxpose.models.mpm`: `PretrainNet` (official `MPMmask2` / `MPMmask`, with
`sample_masks` and `pretrain_from_torch`) for pre-training and `Model` (P-STMO) for fine-tuning.

Pretext losses (`pretrain_loss_fn`), all MPJPE-style (mean L2 over every joint and frame, not only the
masked ones, as the official code does): masked 2D modelling, masked 3D modelling and masked
2D-to-3D lifting, weighted 5 / 2 / 0 (the 17-joint H36M recipe; `PRETEXT_WEIGHTS`).

Masks are drawn inside the jitted step from the RNG stream 'mask' (`sample_masks`; the official
`MaskGen`: per frame `spatial_mask_num` distinct joints, int(T * temporal_mask_rate) frames, one
mask shared by the whole batch); a batch may instead carry explicit masks (`MASK_KEYS`).

One method serves both stages: `loss_fn` and `predict` dispatch on the network (a `PretrainNet`
or the lifter), and `make_model(config)` builds the network of the stage (pre-training for
seq2seq windows, the lifter for 'center' windows). Fine-tuning (`finetune_loss_fn`: MPJPE of the
VTE prediction of every frame + MPJPE of the centre frame) starts from the pre-trained encoder via
`load_pretrained_encoder`. `complete_pose` runs the 2D/3D completion of occluded joints/frames.

Deviations:
  * The number of masked frames is static (it sets the encoder's token count); explicit temporal
    masks must mask exactly `num_masked_frames` frames (or pass `num_masked` to the module).
  * Masks may also be per sample ((B, T, J) and (B, T)); the official code shares them.
  * The PoseAug 16-joint recipe (5 (L2D + L2D_aug) + 5 (L3D + L3D_aug) + L_lift) needs the PoseAug
    generators, which are not ported; with `PRETEXT_WEIGHTS['poseaug16']` the same weights apply to
    the batch's own (possibly augmented upstream) pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose import models
from jaxpose.methods import _kwargs
from jaxpose.methods.base import Method
from jaxpose.models import mpm as lifter
from jaxpose.models.mpm import MASK_KEYS, PretrainNet, from_lifter

# Pretext-task weights (mask2d, mask3d, lift) of the official recipes.
PRETEXT_WEIGHTS = {
  'h36m17': {'mask2d': 5.0, 'mask3d': 2.0, 'lift': 0.0},
  'poseaug16': {'mask2d': 5.0, 'mask3d': 5.0, 'lift': 1.0},
}
# Official "tube" masks over limbs for the completion tasks (H36M-17 indices).
LIMBS_H36M17 = {
  'right_leg': (1, 2, 3),
  'left_leg': (4, 5, 6),
  'left_arm': (11, 12, 13),
  'right_arm': (14, 15, 16),
}


# method.kwargs keys and their defaults (the README pre-training command: `-smn 5 -tmr 0.6`,
# MPMmask2's one decoder layer, the H36M-17 pretext weights).
DEFAULTS = {
  'spatial_mask_num': 5,  # joints masked per frame (pre-training)
  'temporal_mask_rate': 0.6,  # fraction of frames masked: int(T * rate)
  'decoder_layers': 1,  # 1 = MPMmask2, 2 = MPMmask
  'pretext_weights': None,  # {'mask2d', 'mask3d', 'lift'}; None = PRETEXT_WEIGHTS['h36m17']
}


def settings(config) -> dict[str, Any]:
  """`config.method.kwargs` over DEFAULTS; unknown keys raise with the valid ones."""
  return _kwargs.settings(config, DEFAULTS, 'mpm')


def make_model(config) -> nn.Module:
  """The network a config trains: `PretrainNet` for pre-training, the lifter for fine-tuning.

  The stage is read off `config.data.mode`: pre-training reconstructs every frame of seq2seq
  windows; fine-tuning is seq2frame ('center' windows, official P-STMO loader). The pre-training
  network copies T, J, L, C and d_ff from the `model` block (the mpm lifter's variant and
  kwargs) and takes `spatial_mask_num`, `temporal_mask_rate` and `decoder_layers` from
  `config.method.kwargs` (DEFAULTS: 5, 0.6, 1, the README pre-training command).
  """
  base = models.build_from_config(config)
  if config.data.get('mode', 'seq2seq') == 'center':
    return base
  d = settings(config)
  return from_lifter(
    base,
    spatial_mask_num=int(d['spatial_mask_num']),
    temporal_mask_rate=float(d['temporal_mask_rate']),
    decoder_layers=int(d['decoder_layers']),
  )


def mpjpe_per_sample(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Mean L2 distance over frames and joints: (B, T, J, C) x2 -> (B,)."""
  err = jnp.linalg.norm(pred - target, axis=-1)
  return err.reshape(err.shape[0], -1).mean(axis=1)


def _masked_mean(per_sample: jax.Array, w: jax.Array) -> jax.Array:
  return jnp.sum(per_sample * w) / jnp.maximum(jnp.sum(w), 1.0)


def _weights(batch, b: int, dtype) -> jax.Array:
  if 'valid' in batch:
    return batch['valid'].reshape(b, -1).any(axis=-1).astype(dtype)
  return jnp.ones((b,), dtype)


def pretext_losses(
  out: Mapping[str, jax.Array], x2d: jax.Array, x3d: jax.Array
) -> dict[str, jax.Array]:
  """Per-sample pretext losses {'mask2d', 'mask3d', 'lift'}: (B,) each (lift only if present)."""
  parts = {
    'mask2d': mpjpe_per_sample(out['out2d'], x2d),
    'mask3d': mpjpe_per_sample(out['out3d'], x3d),
  }
  if 'out3d_lift' in out:
    parts['lift'] = mpjpe_per_sample(out['out3d_lift'], x3d)
  return parts


def _apply(model, params, model_state, args, kwargs, rngs):
  variables = {'params': params, **model_state}
  if model_state:
    return model.apply(variables, *args, train=True, rngs=rngs, mutable=list(model_state), **kwargs)
  return model.apply(variables, *args, train=True, rngs=rngs, **kwargs), model_state


def loss_fn(model: nn.Module, params, model_state, batch, rng, config):
  """The method's objective: `pretrain_loss_fn` for a `PretrainNet`, else `finetune_loss_fn`."""
  fn = pretrain_loss_fn if isinstance(model, PretrainNet) else finetune_loss_fn
  return fn(model, params, model_state, batch, rng, config)


def pretrain_loss_fn(model: PretrainNet, params, model_state, batch, rng, config):
  """Pre-training objective: weighted masked 2D / 3D modelling and masked 2D->3D lifting.

  Args:
    model: a `PretrainNet`.
    params, model_state: its `params` and `{'batch_stats': ...}`.
    batch: 'kp2d_norm' (B, T, J, C>=2), 'pose3d_cam' (B, T, J, 3) metres root-relative, optional
      'valid' (B, T) and explicit masks under `MASK_KEYS`.
    rng: step key; split into the 'dropout' and 'mask' streams.
    config: reads `config.method.kwargs.pretext_weights` ({'mask2d', 'mask3d', 'lift'}), default
      `PRETEXT_WEIGHTS['h36m17']`.

  Returns:
    (loss, (scalars, new_model_state)).
  """
  weights = dict(settings(config)['pretext_weights'] or PRETEXT_WEIGHTS['h36m17'])
  x2d = batch['kp2d_norm'][..., :2]
  x3d = batch['pose3d_cam'].at[..., 0, :].set(0.0)  # official: input_3D[:, :, 0] = 0
  drop, mask = jax.random.split(rng)
  masks = {k: batch[k] for k in MASK_KEYS} if all(k in batch for k in MASK_KEYS) else None
  kwargs = {'masks': masks, 'lift': bool(weights.get('lift', 0.0))}
  out, new_state = _apply(
    model, params, model_state, (x2d, x3d), kwargs, {'dropout': drop, 'mask': mask}
  )
  parts = pretext_losses(out, x2d, x3d)
  w = _weights(batch, x2d.shape[0], x2d.dtype)
  total = sum(weights.get(k, 0.0) * v for k, v in parts.items())
  loss = _masked_mean(total, w)
  scalars = {'loss': loss, **{f'loss/{k}': _masked_mean(v, w) for k, v in parts.items()}}
  return loss, (scalars, new_state)


def predict(model: nn.Module, variables, kp2d_norm: jax.Array, config) -> jax.Array:
  """A `PretrainNet`: the unmasked 2D -> 3D lift of every frame (B, T, J, 3), to monitor
  pre-training. The lifter: the centre frame (B, 1, J, 3), flip-averaged when
  `config.eval.flip_test` (as `supervised.predict`)."""
  if not isinstance(model, PretrainNet):
    from jaxpose.methods import supervised

    return supervised.predict(model, variables, kp2d_norm[..., : model.in_channels], config)
  out = model.apply(
    variables, kp2d_norm, train=False, lift=True, num_masked=0, masks=_no_masks(model)
  )
  return out['out3d_lift']


def _no_masks(model: PretrainNet) -> dict[str, jax.Array]:
  t, j = model.num_frames, model.num_joints
  return {
    'spatial_mask_2d': jnp.zeros((t, j), bool),
    'spatial_mask_3d': jnp.zeros((t, j), bool),
    'temporal_mask_2d': jnp.zeros((t,), bool),
    'temporal_mask_3d': jnp.zeros((t,), bool),
  }


def complete_pose(
  model: PretrainNet,
  variables,
  pose: jax.Array,
  *,
  joint_mask: jax.Array | np.ndarray | None = None,
  frame_mask: np.ndarray | Sequence[bool] | None = None,
) -> dict[str, jax.Array]:
  """2D or 3D pose completion of occluded joints and frames (the paper's completion tasks).

  Args:
    model: a `PretrainNet` (official completion checkpoints are `MPMmask`, decoder_layers=2).
    variables: its variables.
    pose: (B, T, J, 2) kp2d_norm or (B, T, J, 3) root-relative pose3d_cam.
    joint_mask: occluded joints, broadcastable to (B, T, J) bool (e.g. a limb tube (B, 1, J)).
    frame_mask: occluded frames (T,) bool, concrete (the count fixes the encoder length).

  Returns:
    For 2D input: 'pose2d' (observed entries kept, occluded ones predicted), 'pose2d_pred' (the
    raw reconstruction) and 'pose3d' (the lift of the completed sequence). For 3D input:
    'pose3d' (completed) and 'pose3d_pred'. All (B, T, J, 2|3).
  """
  b, t, j, d = pose.shape
  jm = jnp.zeros((b, t, j), bool) if joint_mask is None else jnp.broadcast_to(joint_mask, (b, t, j))
  fm = np.zeros((t,), bool) if frame_mask is None else np.asarray(frame_mask, bool)
  if fm.shape != (t,):
    raise ValueError(f'frame_mask must have shape ({t},), got {fm.shape}')
  masks = {f'spatial_mask_{k}': jm for k in ('2d', '3d')}
  masks.update({f'temporal_mask_{k}': jnp.asarray(fm) for k in ('2d', '3d')})
  occluded = (jm | jnp.asarray(fm)[None, :, None])[..., None]
  n = int(fm.sum())
  if d == 2:
    out = model.apply(variables, pose, train=False, masks=masks, lift=True, num_masked=n)
    return {
      'pose2d': jnp.where(occluded, out['out2d'], pose),
      'pose2d_pred': out['out2d'],
      'pose3d': out['out3d_lift'],
    }
  zeros2d = jnp.zeros((b, t, j, 2), pose.dtype)
  out = model.apply(variables, zeros2d, pose, train=False, masks=masks, lift=False, num_masked=n)
  return {'pose3d': jnp.where(occluded, out['out3d'], pose), 'pose3d_pred': out['out3d']}


# ---------------------------------------------------------------------------------------------
# Fine-tuning.


def load_pretrained_encoder(finetune, pretrain):
  """Copies every top-level entry the two trees share by name (official `MAEreload`).

  That is `encoder2d`, `shared_layers_spatial` and `shared_layers_temporal`, parameters and
  BatchNorm statistics alike. Accepts `params` trees or whole variable dicts (collections).

  Args:
    finetune: the lifter's (`jaxpose.models.mpm.Model`) params or variables.
    pretrain: the `PretrainNet`'s params or variables.

  Returns:
    A copy of `finetune` with the shared entries replaced.

  Raises:
    ValueError: when a shared entry differs in structure or shape (e.g. another T or C), or when
      nothing is shared.
  """
  if 'params' in finetune and 'params' in pretrain:
    out, n = dict(finetune), 0
    for col in finetune:
      if col in pretrain:
        out[col], k = _copy_shared(finetune[col], pretrain[col], col)
        n += k
  else:
    out, n = _copy_shared(finetune, pretrain, 'params')
  if n == 0:
    raise ValueError('load_pretrained_encoder: the trees share no entry names')
  return out


def adapt_init(loaded, fresh):
  """Engine hook (`config.init_from`): weights of the same network load whole; a pre-training
  network's weights initialise the fine-tuning lifter's shared encoder (official `MAEreload`)."""
  if jax.tree.structure(loaded.get('params', loaded)) == jax.tree.structure(fresh['params']):
    return loaded
  return load_pretrained_encoder(fresh, loaded)


def _copy_shared(dst, src, col: str):
  out, n = dict(dst), 0
  for name in dst:
    if name not in src:
      continue
    a, b = jax.tree.structure(dst[name]), jax.tree.structure(src[name])
    shapes_dst = jax.tree.map(jnp.shape, dst[name])
    shapes_src = jax.tree.map(jnp.shape, src[name])
    if a != b or shapes_dst != shapes_src:
      raise ValueError(
        f'load_pretrained_encoder: {col}/{name} differs: fine-tune '
        f'{shapes_dst} vs pre-train {shapes_src}'
      )
    out[name] = src[name]
    n += 1
  return out, n


def finetune_loss_fn(model: lifter.Model, params, model_state, batch, rng, config):
  """Fine-tuning objective: MPJPE(VTE, all frames) + MPJPE(centre frame) (official trainer).

  Targets are the root-zeroed `pose3d_cam_window` (B, T, J, 3) when the batch has it (the 3D of
  every input frame of a 'center' window), else `pose3d_cam`: with T frames both terms apply
  (centre = frame T // 2), with one frame (plain 'center' batches) only the centre term.
  Returns (loss, (scalars, new_model_state)).
  """
  del config
  x = batch['kp2d_norm'][..., : model.in_channels]
  target = batch.get('pose3d_cam_window', batch['pose3d_cam']).at[..., 0, :].set(0.0)
  (centre, vte), new_state = _apply(
    model, params, model_state, (x,), {'return_all': True}, {'dropout': rng}
  )
  t = target.shape[1]
  target_c = target[:, t // 2 : t // 2 + 1]
  parts = {'centre': mpjpe_per_sample(centre, target_c)}
  if t == vte.shape[1]:
    parts['vte'] = mpjpe_per_sample(vte, target)
  w = _weights(batch, x.shape[0], x.dtype)
  loss = _masked_mean(sum(parts.values()), w)
  return loss, (
    {'loss': loss, **{f'loss/{k}': _masked_mean(v, w) for k, v in parts.items()}},
    new_state,
  )


METHOD = Method(loss_fn=loss_fn, predict=predict, make_model=make_model, adapt_init=adapt_init)
