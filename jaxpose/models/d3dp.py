"""D3DP denoiser: any registry lifter conditioned on a noisy 3D pose and a diffusion timestep.

Paper: Shan, Wang, Zhao, Wang, Gao, "Diffusion-Based 3D Human Pose Estimation with Multi-Hypothesis
Aggregation", ICCV 2023, arXiv:2303.11579. Official code: github.com/paTRICK-swk/D3DP at commit
afcdd05df676452fa42cd3cf62ba9c7174c1f78d (`common/mixste.py`, the `MixSTE2` denoiser). Written
from research/d3dp.md; no code copied. The diffusion itself (schedule, training noise, DDIM
sampler, JPMA) is `jaxpose.methods.d3dp`.

x (B, T, J, C2 + 3) = [2D condition, noisy 3D pose / scale], the 2D channels first, and
t (B,) timesteps -> x0 prediction (B, T, J, 3) in units of x / scale. The lifter (`lifter`, MixSTE
by default; any registry model by name) is built with `in_channels` = C2 + 3 and reads the tokens
unchanged. The timestep enters through a sinusoidal embedding (half = D/2 frequencies
w_i = exp(-i ln(1e4) / (half - 1)), [sin(t w), cos(t w)], sin first) and an MLP
Linear(D, 2D) -> GELU(erf) -> Linear(2D, D) (`time_mlp_1`, `time_mlp_3`, the official names); the
result is added to every (frame, joint) token before the lifter's first block.

Composition, not a MixSTE edit: the lifter is an unmodified registry module named `lifter`. Lifters
with a `token_hook` (MixSTE, MotionAGFormer, MotionBERT) get the time embedding through
`token_hook(0, h)`, i.e. on the tokens after the token and spatial position embeddings, the
official order (embed + spatial pos + time). A lifter without one names its token-embedding
submodule with `embed` (and its width with `time_dim`); a flax method interceptor then adds the
time embedding to that submodule's output. Either way the embedding must be applied exactly once,
or the module raises. Parameters: {'lifter': <the lifter's tree>, 'time_mlp_1', 'time_mlp_3'};
`from_torch` maps `pose_estimator.time_mlp.{1,3}` to the latter and `pose_estimator.*` to
`lifter/*`.

Deviations from the official code:
  * The hypothesis axis H is not part of the module: `methods.d3dp` folds it into the batch
    (the official MixSTE2 reshapes (B, H) -> B*H internally; the math is the same).
  * The 12 float64 schedule buffers of the official state dict are not variables here; the
    schedule is recomputed by `models.layers.diffusion.cosine_schedule` and `from_torch` checks them.
  * Heads (8) and MLP ratio (2) are hard-coded in the official D3DP wrapper; here they are the
    lifter's fields (MixSTE's defaults are the same).
  * MixSTE's `pos_drop` comes before `token_hook(0, h)`, so with `drop_rate` > 0 the time
    embedding escapes that dropout (official: inside it). D3DP trains with drop_rate 0.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose import models
from jaxpose.convert.torch_utils import convert_for_model
from jaxpose.models.layers.diffusion import cosine_schedule, timestep_embedding
from jaxpose.models.layers.linear import Linear
from jaxpose.models.layers.mlp import gelu


@dataclasses.dataclass(frozen=True)
class LifterSpec:
  """How to drive a registry lifter as a denoiser: its field names.

  Attributes:
    frames: field holding T.
    joints: field holding J.
    channels: field holding the input channels (set to C2 + 3).
    width: field holding D, the token width (the time embedding's width).
  """

  frames: str = 'num_frames'
  joints: str = 'num_joints'
  channels: str = 'in_channels'
  width: str = 'dim'


LIFTERS: dict[str, LifterSpec] = {
  'mixste': LifterSpec(),
  'motionagformer': LifterSpec('n_frames', 'num_joints', 'dim_in', 'dim_feat'),
  'motionbert': LifterSpec('maxlen', 'num_joints', 'dim_in', 'dim_feat'),
}

VARIANTS = {
  '243': {'num_frames': 243},
  '81': {'num_frames': 81},
  '27': {'num_frames': 27},
}

# drop_rate on, so the shared contract test sees the 'dropout' stream at work.
TEST_OVERRIDES = {
  'num_frames': 9,
  'lifter_kwargs': (('dim', 32), ('depth', 2), ('drop_rate', 0.1)),
}

# One denoiser call at B = H = 1 (research/d3dp.md section 2: official class, FlopCounterMode).
# Sampling costs 2 (flip) x H x K calls.
PAPER = {
  '243': {
    'params': 34_835_459,
    'macs_all': 147.4e9,
    'frames': 243,
    'reported_params': '34.8M (measured on the official class)',
    'reported_macs': '147.4G MACs per denoiser call (294.86 GFLOPs, measured)',
  },
  '81': {'params': 34_752_515, 'frames': 81, 'reported_params': '34.8M (measured)'},
  '27': {'params': 34_724_867, 'frames': 27, 'reported_params': '34.7M (measured)'},
}


class Model(nn.Module):
  """A lifter turned into D3DP's x0-predicting denoiser.

  Attributes:
    num_frames: T.
    num_joints: J.
    in_channels: C2 + 3, the 2D condition channels plus the noisy 3D pose.
    lifter: registry name of the backbone (`jaxpose.models.list_models()`).
    lifter_variant: its variant ('' = its default).
    lifter_kwargs: extra constructor fields of the lifter, as (name, value) pairs (hashable, so
      the module can be a static jit argument) or a mapping.
    embed: for a lifter without `token_hook`: its submodule whose output (..., D) receives the
      time embedding.
    time_dim: D (0 = read from the lifter's width field, see `LIFTERS`).
  """

  num_frames: int = 243
  num_joints: int = 17
  in_channels: int = 5
  lifter: str = 'mixste'
  lifter_variant: str = ''
  lifter_kwargs: tuple[tuple[str, Any], ...] | Mapping[str, Any] = ()
  embed: str = ''
  time_dim: int = 0

  def _build_lifter(self, spec: LifterSpec) -> nn.Module:
    kwargs = dict(self.lifter_kwargs)
    kwargs.update(
      {spec.frames: self.num_frames, spec.joints: self.num_joints, spec.channels: self.in_channels}
    )
    checked = models.build(self.lifter, self.lifter_variant or None, **kwargs)  # validates names
    fields = {f: getattr(checked, f) for f in models.model_fields(self.lifter)}
    return type(checked)(**fields, name='lifter')

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, t: jax.Array | None = None) -> jax.Array:
    """Predicts the clean pose from the 2D condition and a noisy pose.

    Args:
      x: (B, T, J, C2 + 3): kp2d_norm (C2 channels) then the noisy pose / scale (3 channels);
        or (B, T, J, C2), the condition alone, read with a zero noisy pose (what the engine's
        initialisation and shape tools pass: they know only the data's channels).
      train: dropout and drop path of the lifter (rng stream `dropout`).
      t: (B,) diffusion timesteps in [0, 1000); None means 0 (registry and FLOP tools).

    Returns:
      (B, T, J, 3) x0 prediction in units of pose / scale.
    """
    if x.ndim == 4 and x.shape[-1] == self.in_channels - 3:
      x = jnp.concatenate([x, jnp.zeros((*x.shape[:-1], 3), x.dtype)], axis=-1)
    if x.ndim != 4 or x.shape[1:] != (self.num_frames, self.num_joints, self.in_channels):
      raise ValueError(
        f'D3DP expects (B, {self.num_frames}, {self.num_joints}, {self.in_channels}), got {x.shape}'
      )
    spec = LIFTERS.get(self.lifter, LifterSpec())
    lifter = self._build_lifter(spec)
    width = self.time_dim or int(getattr(lifter, spec.width))
    if t is None:
      t = jnp.zeros(x.shape[:1], jnp.int32)
    tau = Linear(2 * width, name='time_mlp_1')(timestep_embedding(jnp.reshape(t, (-1,)), width))
    tau = Linear(width, name='time_mlp_3')(gelu(tau))  # (B, D)
    hits = []

    def add(h):
      hits.append(h.shape)
      return h + tau.reshape(tau.shape[:1] + (1,) * (h.ndim - 2) + tau.shape[1:])

    if 'token_hook' in inspect.signature(type(lifter).__call__).parameters:
      y = lifter(x, train=train, token_hook=lambda i, h: add(h) if i == 0 else h)
      where = 'token_hook(0, h)'
    elif self.embed:
      target = (*self.path, 'lifter', self.embed)

      def intercept(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        hit = context.method_name == '__call__' and tuple(context.module.path) == target
        return add(out) if hit else out

      with nn.intercept_methods(intercept):
        y = lifter(x, train=train)
      where = f'submodule {"/".join(target)}'
    else:
      raise ValueError(
        f'D3DP: lifter {self.lifter!r} has no token_hook; name its token embedding '
        'with `embed` (and its width with `time_dim`)'
      )
    if len(hits) != 1:  # the timestep must reach the lifter exactly once
      raise ValueError(f'D3DP: the time embedding went into {where} {len(hits)} times, expected 1')
    return y


def input_shape(model: Model) -> tuple[int, int, int]:
  """(T, J, C2 + 3) the denoiser reads."""
  return (model.num_frames, model.num_joints, model.in_channels)


def _torch_rename(module_path: str) -> str:
  rest = module_path.removeprefix('pose_estimator').removeprefix('.')
  return rest if rest.startswith('time_mlp.') else '.'.join(filter(None, ('lifter', rest)))


_SCHEDULE_KEYS = frozenset(cosine_schedule(2))


def from_torch(
  state_dict: Mapping[str, np.ndarray],
  *,
  cs: int | None = None,
  dep: int | None = None,
  number_of_frames: int | None = None,
  timestep: int | None = None,
  **ignored: Any,
):
  """Converts an official `D3DP` state dict (MixSTE2 denoiser + schedule buffers).

  Args:
    state_dict: official keys (`pose_estimator.STEblocks.0.attn.qkv.weight`, ...,
      `alphas_cumprod`, ...), `module.` prefixes stripped.
    cs: embedding width (`-cs`); None reads it off the weights.
    dep: depth (`-dep`); None counts the blocks.
    number_of_frames: T (`-f`); None reads the temporal position embedding.
    timestep: diffusion steps of the schedule (`-timestep`); None reads it off the schedule
      buffers' length (1000, the official default, when the state dict holds none). Float64
      buffers present in the state dict are checked against
      `layers.diffusion.cosine_schedule(timestep)` (max abs 1e-12).
    **ignored: the other official arguments (`scale`, `test_time_augmentation`,
      `num_proposals`, `sampling_timesteps`, joints_left/right, `is_train`) are sampler settings
      of `methods.d3dp`, not weights.

  Returns:
    (Model, variables).
  """
  del ignored
  if timestep is None:
    lengths = {len(np.asarray(v)) for k, v in state_dict.items() if k in _SCHEDULE_KEYS}
    if len(lengths) > 1:
      raise ValueError(f'schedule buffers of different lengths {sorted(lengths)}')
    timestep = lengths.pop() if lengths else 1000
  sched = cosine_schedule(timestep)
  for key, value in state_dict.items():
    if not key.startswith('pose_estimator.') and key in sched:
      if np.shape(value) != sched[key].shape:
        raise ValueError(
          f'schedule buffer {key!r} has shape {np.shape(value)}, timestep={timestep} needs '
          f'{sched[key].shape}'
        )
      err = float(np.max(np.abs(np.asarray(value, np.float64) - sched[key])))
      if err > 1e-12:
        raise ValueError(f'schedule buffer {key!r} differs from the cosine schedule by {err:.3e}')
  sd = {k: v for k, v in state_dict.items() if k.startswith('pose_estimator.')}
  embed = np.asarray(sd['pose_estimator.Spatial_patch_to_embedding.weight'])
  dim = cs or embed.shape[0]
  depth = dep or sum(
    1 for k in sd if k.startswith('pose_estimator.STEblocks.') and k.endswith('norm1.weight')
  )
  model = Model(
    num_frames=number_of_frames or np.asarray(sd['pose_estimator.Temporal_pos_embed']).shape[1],
    num_joints=np.asarray(sd['pose_estimator.Spatial_pos_embed']).shape[1],
    in_channels=embed.shape[1],
    lifter='mixste',
    lifter_kwargs=(('dim', dim), ('depth', depth), ('num_heads', 8), ('mlp_ratio', 2.0)),
  )
  return model, convert_for_model(sd, model, (1, *input_shape(model)), rename=_torch_rename)
