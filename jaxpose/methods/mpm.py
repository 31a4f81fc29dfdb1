"""MPM masked pose modelling: the pre-training network, its pretext losses, fine-tuning, completion.

Paper: Zhang et al., "A Unified 2D-3D Human Pose Representation via Masked Pose Modeling",
arXiv:2306.17201. Official code: github.com/vvirgooo2/MPM at commit
47ceae47d75a80ca7a20dcf90371e4638669e34c (`model/MPMLift.py: MPMmask2, MPMmask`,
`trainutils/pretrain_epoch.py`, `trainer.py`). No licence; written from research/mpm.md.

Pre-training network (`PretrainNet`, official `MPMmask2`; `decoder_layers=2` gives `MPMmask`):
  * a 2D branch `encoder2d` (Simplemlp 2J -> 2C) and a 3D branch `encoder3d` (3J -> 2C), then the
    layers shared by both: `shared_layers_spatial` (FCBlock 2C -> C) and `shared_layers_temporal`
    (vanilla transformer), named exactly like the fine-tuning lifter (`jaxpose.models.mpm.Model`)
    so that `load_pretrained_encoder` copies them by name;
  * spatial masking: masked joints are replaced by a learnable token (`spatial_mask_token2d` (2,),
    `spatial_mask_token3d` (3,)) before the encoder;
  * temporal masking, MAE style: the positional embedding is added to all frames, then only the
    visible frames are encoded; `encoder_LN` normalises them;
  * decoder input: visible features + `dec_pos_embedding`, masked frames `temporal_mask_token` +
    `dec_pos_embedding`, in the original frame order; `decoder2d` / `decoder3d` (transformers
    without positional embedding) and BN + Linear heads `fcn_dec2d` (2J) / `fcn_dec3d` (3J).
  Outputs: the 2D reconstruction and the 2D->3D lift from the masked 2D input, and the 3D
  reconstruction from the masked 3D input.

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

from jaxpose.models import mpm as lifter
from jaxpose.models.layers.pstmo_norm import PstmoLayerNorm

# Pretext-task weights (mask2d, mask3d, lift) of the official recipes.
PRETEXT_WEIGHTS = {
  'h36m17': {'mask2d': 5.0, 'mask3d': 2.0, 'lift': 0.0},
  'poseaug16': {'mask2d': 5.0, 'mask3d': 5.0, 'lift': 1.0},
}
# Optional explicit masks in a batch; when absent the step draws them from the 'mask' stream.
MASK_KEYS = ('spatial_mask_2d', 'spatial_mask_3d', 'temporal_mask_2d', 'temporal_mask_3d')
# Official "tube" masks over limbs for the completion tasks (H36M-17 indices).
LIMBS_H36M17 = {
  'right_leg': (1, 2, 3),
  'left_leg': (4, 5, 6),
  'left_arm': (11, 12, 13),
  'right_arm': (14, 15, 16),
}


def _ranks(u: jax.Array) -> jax.Array:
  return jnp.argsort(jnp.argsort(u, axis=-1), axis=-1)


def sample_masks(
  rng: jax.Array,
  *,
  num_frames: int,
  num_joints: int,
  spatial_mask_num: int,
  num_masked: int,
  batch_size: int | None = None,
) -> dict[str, jax.Array]:
  """Random spatial and temporal masks for the 2D and 3D branches (official `MaskGen`).

  Args:
    rng: PRNG key.
    num_frames, num_joints: T, J.
    spatial_mask_num: joints masked in every frame.
    num_masked: frames masked (dropped before the encoder).
    batch_size: None shares one mask over the batch (official); else one mask per sample.

  Returns:
    {'spatial_mask_2d', 'spatial_mask_3d': (T, J) or (B, T, J) bool,
     'temporal_mask_2d', 'temporal_mask_3d': (T,) or (B, T) bool}, True = masked.
  """
  lead = () if batch_size is None else (batch_size,)
  k = jax.random.split(rng, 4)
  out = {}
  for i, d in enumerate(('2d', '3d')):
    u = jax.random.uniform(k[2 * i], (*lead, num_frames, num_joints))
    out[f'spatial_mask_{d}'] = _ranks(u) < spatial_mask_num
    u = jax.random.uniform(k[2 * i + 1], (*lead, num_frames))
    out[f'temporal_mask_{d}'] = _ranks(u) < num_masked
  return out


class PretrainNet(nn.Module):
  """Masked pose modelling network (official `MPMmask2`; `MPMmask` with decoder_layers=2).

  Attributes:
    num_frames: T.
    num_joints: J.
    layers: shared temporal transformer layers L.
    channel: width C.
    d_hid: FFN hidden width.
    num_heads: attention heads (8).
    dropout: transformer dropout (0.1).
    mlp_dropout: MLP encoder dropout (0.1 in the pre-training `Encoder.py`).
    decoder_layers: layers of each decoder (1 for MPMmask2, 2 for MPMmask).
    spatial_mask_num: joints masked per frame when masks are drawn.
    temporal_mask_rate: fraction of frames masked; int(T * rate) frames.
    bn_momentum: BatchNorm momentum, torch convention.
  """

  num_frames: int = 243
  num_joints: int = 17
  layers: int = 4
  channel: int = 256
  d_hid: int = 512
  num_heads: int = 8
  dropout: float = 0.1
  mlp_dropout: float = 0.1
  decoder_layers: int = 1
  spatial_mask_num: int = 5
  temporal_mask_rate: float = 0.6
  bn_momentum: float = 0.1

  @property
  def num_masked_frames(self) -> int:
    # The small epsilon keeps e.g. T * (16 / T) from rounding down to 15.
    return int(self.num_frames * self.temporal_mask_rate + 1e-9)

  def setup(self):
    c, t = self.channel, self.num_frames
    self.encoder2d = lifter.Simplemlp(2 * c, self.mlp_dropout, self.bn_momentum)
    self.encoder3d = lifter.Simplemlp(2 * c, self.mlp_dropout, self.bn_momentum)
    self.shared_layers_spatial = lifter.FCBlock(c, 1, self.mlp_dropout, self.bn_momentum)
    self.shared_layers_temporal = lifter.VanillaTransformer(
      self.layers, self.d_hid, t, self.num_heads, self.dropout
    )
    self.encoder_LN = PstmoLayerNorm()
    randn = nn.initializers.normal(1.0)
    self.dec_pos_embedding = self.param('dec_pos_embedding', randn, (1, t, c))
    self.temporal_mask_token = self.param('temporal_mask_token', randn, (1, 1, c))
    self.spatial_mask_token3d = self.param('spatial_mask_token3d', randn, (1, 1, 3))
    self.spatial_mask_token2d = self.param('spatial_mask_token2d', randn, (1, 1, 2))
    dec = dict(
      num_layers=self.decoder_layers,
      d_ff=self.d_hid,
      length=t,
      num_heads=self.num_heads,
      dropout=self.dropout,
      pos_embedding=False,
    )
    self.decoder2d = lifter.VanillaTransformer(**dec)
    self.decoder3d = lifter.VanillaTransformer(**dec)
    self.fcn_dec2d = lifter.Head(2 * self.num_joints, self.bn_momentum)
    self.fcn_dec3d = lifter.Head(3 * self.num_joints, self.bn_momentum)

  def encode(
    self, x: jax.Array, smask: jax.Array, tmask: jax.Array, num_masked: int, *, train: bool
  ) -> jax.Array:
    """Masked encoding and decoder input.

    Args:
      x: (B, T, J, 2|3) poses.
      smask: (T, J) or (B, T, J) bool, True = joint replaced by the mask token.
      tmask: (T,) or (B, T) bool, True = frame dropped; exactly `num_masked` per row.
      num_masked: static count of masked frames.
      train: dropout and BatchNorm batch statistics.

    Returns:
      decoder input (B, T, C).
    """
    b, t, j, d = x.shape
    if (t, j) != (self.num_frames, self.num_joints) or d not in (2, 3):
      raise ValueError(
        f'PretrainNet expects (B, {self.num_frames}, {self.num_joints}, 2|3), got {x.shape}'
      )
    token = self.spatial_mask_token2d if d == 2 else self.spatial_mask_token3d
    x = jnp.where(jnp.broadcast_to(smask, (b, t, j))[..., None], token[0, 0], x)
    h = x.reshape(b, t, j * d)
    h = (self.encoder2d if d == 2 else self.encoder3d)(h, train=train)
    h = self.shared_layers_spatial(h, train=train)
    tmask = jnp.broadcast_to(tmask, (b, t))
    # Visible frames first, each group in frame order (the official nonzero() order).
    order = jnp.argsort(tmask.astype(jnp.int32), axis=-1, stable=True)
    vis_idx, mask_idx = order[:, : t - num_masked], order[:, t - num_masked :]
    feats = self.shared_layers_temporal(h, train=train, visible_idx=vis_idx)
    feats = self.encoder_LN(feats)
    pos = jnp.broadcast_to(self.dec_pos_embedding, (b, t, self.channel))
    take = lambda a, idx: jnp.take_along_axis(a, idx[..., None], axis=1)
    full = jnp.concatenate(
      [feats + take(pos, vis_idx), self.temporal_mask_token + take(pos, mask_idx)], axis=1
    )
    return take(full, jnp.argsort(order, axis=-1))  # back to frame order

  def decode(self, h: jax.Array, dim: int, *, train: bool) -> jax.Array:
    """Decoder input (B, T, C) -> (B, T, J, dim) with the 2D (dim 2) or 3D (dim 3) decoder."""
    b, t, _ = h.shape
    dec, head = (self.decoder2d, self.fcn_dec2d) if dim == 2 else (self.decoder3d, self.fcn_dec3d)
    return head(dec(h, train=train), train=train).reshape(b, t, self.num_joints, dim)

  def __call__(
    self,
    x2d: jax.Array,
    x3d: jax.Array | None = None,
    *,
    train: bool,
    masks: Mapping[str, jax.Array] | None = None,
    lift: bool = True,
    num_masked: int | None = None,
  ) -> dict[str, jax.Array]:
    """Runs the 2D branch (and the 3D branch when `x3d` is given).

    Args:
      x2d: kp2d_norm (B, T, J, 2) (a confidence channel, if any, is dropped).
      x3d: pose3d_cam (B, T, J, 3) root-relative, or None (then zeros, so `init` creates every
        parameter; the 3D output is still returned).
      train: dropout (rng 'dropout') and BatchNorm batch statistics (mutable `batch_stats`).
      masks: `MASK_KEYS` arrays (see `sample_masks`); None draws them from the rng stream 'mask'
        (or from a fixed key when no 'mask' stream is given, e.g. at `init`).
      lift: also lift the masked 2D input to 3D.
      num_masked: static count of masked frames; default `num_masked_frames`.

    Returns:
      {'out2d': (B, T, J, 2), 'out3d': (B, T, J, 3), and with `lift` 'out3d_lift' (B, T, J, 3)}.
    """
    n = self.num_masked_frames if num_masked is None else num_masked
    if masks is None:
      rng = self.make_rng('mask') if self.has_rng('mask') else jax.random.key(0)
      masks = sample_masks(
        rng,
        num_frames=self.num_frames,
        num_joints=self.num_joints,
        spatial_mask_num=self.spatial_mask_num,
        num_masked=n,
      )
    x2d = x2d[..., :2]
    if x3d is None:
      x3d = jnp.zeros((*x2d.shape[:-1], 3), x2d.dtype)
    h2 = self.encode(x2d, masks['spatial_mask_2d'], masks['temporal_mask_2d'], n, train=train)
    out = {'out2d': self.decode(h2, 2, train=train)}
    if lift:
      out['out3d_lift'] = self.decode(h2, 3, train=train)
    h3 = self.encode(x3d, masks['spatial_mask_3d'], masks['temporal_mask_3d'], n, train=train)
    out['out3d'] = self.decode(h3, 3, train=train)
    return out


def input_shape(model: PretrainNet) -> tuple[int, int, int]:
  return (model.num_frames, model.num_joints, 2)


def from_lifter(model: lifter.Model, **overrides: Any) -> PretrainNet:
  """The pre-training network whose encoder matches `model` (same T, J, L, C, d_ff, heads)."""
  shared = (
    'num_frames',
    'num_joints',
    'layers',
    'channel',
    'd_hid',
    'num_heads',
    'dropout',
    'bn_momentum',
  )
  kw = {name: getattr(model, name) for name in shared}
  kw.update(overrides)
  return PretrainNet(**kw)


def _method_cfg(config, key: str, default):
  method = getattr(config, 'method', None)
  if method is None:
    return default
  return method.get(key, default) if hasattr(method, 'get') else default


def make_model(config) -> nn.Module:
  """The network a config trains: `PretrainNet` for pre-training, the lifter for fine-tuning.

  The stage is read off `config.data.mode`: pre-training reconstructs every frame of seq2seq
  windows; fine-tuning is seq2frame ('center' windows, official P-STMO loader). The pre-training
  network copies T, J, L, C and d_ff from the `model` block (the mpm lifter's variant and
  kwargs) and reads `config.method.{spatial_mask_num, temporal_mask_rate, decoder_layers}` when
  declared (defaults 5, 0.6, 1: the README pre-training command).
  """
  from jaxpose import models

  base = models.build(
    config.model.name, config.model.get('variant') or None, **dict(config.model.get('kwargs', {}))
  )
  if config.data.get('mode', 'seq2seq') == 'center':
    return base
  return from_lifter(
    base,
    spatial_mask_num=int(_method_cfg(config, 'spatial_mask_num', 5)),
    temporal_mask_rate=float(_method_cfg(config, 'temporal_mask_rate', 0.6)),
    decoder_layers=int(_method_cfg(config, 'decoder_layers', 1)),
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
    config: reads `config.method.pretext_weights` ({'mask2d', 'mask3d', 'lift'}) when declared,
      else `PRETEXT_WEIGHTS['h36m17']`.

  Returns:
    (loss, (scalars, new_model_state)).
  """
  weights = dict(_method_cfg(config, 'pretext_weights', None) or PRETEXT_WEIGHTS['h36m17'])
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


def predict(model: nn.Module, variables, kp2d: jax.Array, config) -> jax.Array:
  """A `PretrainNet`: the unmasked 2D -> 3D lift of every frame (B, T, J, 3), to monitor
  pre-training. The lifter: the centre frame (B, 1, J, 3), flip-averaged when
  `config.eval.flip_test` (as `supervised.predict`)."""
  if not isinstance(model, PretrainNet):
    from jaxpose.methods import supervised

    return supervised.predict(model, variables, kp2d[..., : model.in_channels], config)
  out = model.apply(variables, kp2d, train=False, lift=True, num_masked=0, masks=_no_masks(model))
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


# ---------------------------------------------------------------------------------------------
# Official checkpoint import.


def pretrain_from_torch(
  state_dict: Mapping[str, np.ndarray],
  *,
  layers: int | None = None,
  channel: int | None = None,
  d_hid: int | None = None,
  frames: int | None = None,
  n_joints: int | None = None,
  spatial_mask_num: int = 5,
  temporal_mask_rate: float = 0.6,
  **unused,
):
  """Converts an official `MPMmask2` / `MPMmask` state dict (the pre-training checkpoint).

  Args:
    state_dict: official keys (a DataParallel `module.` prefix is stripped).
    layers, channel, d_hid, frames, n_joints: official `opt` fields; None reads the shapes.
    spatial_mask_num, temporal_mask_rate: official `-smn` / `-tmr`.
    **unused: other `opt` fields (ignored).

  Returns:
    (PretrainNet, variables) with `params` and `batch_stats`.
  """
  del unused
  sd = lifter.strip_module_prefix(state_dict)
  pos = np.asarray(sd['dec_pos_embedding'])
  n_layers = lifter._num_layers
  model = PretrainNet(
    num_frames=frames or pos.shape[1],
    num_joints=n_joints or np.asarray(sd['fcn_dec3d.1.weight']).shape[0] // 3,
    layers=layers or n_layers(sd, 'shared_layers_temporal.model.layers'),
    channel=channel or pos.shape[2],
    d_hid=d_hid or np.asarray(sd['decoder2d.model.layers.0.feed_forward.w_1.weight']).shape[0],
    decoder_layers=n_layers(sd, 'decoder2d.model.layers'),
    spatial_mask_num=spatial_mask_num,
    temporal_mask_rate=temporal_mask_rate,
  )
  params, stats = lifter.convert_encoder(sd)
  params['encoder3d'], stats['encoder3d'] = lifter.convert_simplemlp(sd, 'encoder3d')
  params['encoder_LN'] = lifter._ln(sd, 'encoder_LN')
  for name in (
    'dec_pos_embedding',
    'temporal_mask_token',
    'spatial_mask_token3d',
    'spatial_mask_token2d',
  ):
    params[name] = lifter._np(sd[name])
  for name in ('decoder2d', 'decoder3d'):
    params[name] = lifter.convert_transformer(sd, name)
  for name in ('fcn_dec2d', 'fcn_dec3d'):
    params[name], stats[name] = lifter.convert_head(sd, name)
  variables = {'params': params, 'batch_stats': stats}
  lifter.check_variables(model, variables, lifter.example_input_of(model))
  return model, variables
