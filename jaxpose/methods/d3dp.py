"""D3DP: diffusion-based multi-hypothesis lifting around any denoiser, DDIM sampling and JPMA.

Paper: Shan, Wang, Zhao, Wang, Gao, "Diffusion-Based 3D Human Pose Estimation with Multi-Hypothesis
Aggregation", ICCV 2023, arXiv:2303.11579. Official code: github.com/paTRICK-swk/D3DP at commit
afcdd05df676452fa42cd3cf62ba9c7174c1f78d (`common/diffusionpose.py`, `main.py` evaluate,
`common/loss.py`). Written from research/d3dp.md; no code copied. The denoiser is
`jaxpose.models.d3dp.Model` (any registry lifter + a timestep embedding; MixSTE in the paper).

Diffusion (T_d = 1000 steps, scale s = 1):
  schedule   cosine (s0 = 0.008) betas clipped to [0, 0.999], in float64 on the host
             (`cosine_schedule`); only float32 coefficients enter traced code.
  training   x0 = root-relative pose (metres), t ~ U{0..T_d-1} per clip, eps ~ N(0, I),
             x_t = clip(sqrt(abar_t) s x0 + sqrt(1 - abar_t) eps, +-1.1 s) / s; the network predicts
             x0; loss = the `config.method.loss` terms (MPJPE only in the official recipe).
  sampling   DDIM with eta = 1 on the grid int(linspace(-1, T_d - 1, K + 1)) (float32, truncated),
             reversed: H independent chains x_T ~ N(0, I) of shape (B, H, T, J, 3); at each
             (t, t'): x0 = clip(s f(kp2d, clip(x, +-1.1 s) / s, t), +-1.1 s) with flip test-time
             augmentation inside the step (2D condition and noisy pose flipped, prediction
             unflipped and averaged); eps = (x - sqrt(abar_t) x0) / sqrt(1 - abar_t) from the
             unclamped x; x <- sqrt(abar_t') x0 + c eps + sigma z with
             sigma = eta sqrt((1 - abar_t / abar_t')(1 - abar_t') / (1 - abar_t)),
             c = sqrt(1 - abar_t' - sigma^2). Every step's x0 is returned: (B, K, H, T, J, 3).
  JPMA       each hypothesis is placed at the ground-truth root trajectory (as the released
             evaluation does), projected with the VideoPose3D camera (distortion and clamp), and
             each joint takes the hypothesis whose projection is nearest the 2D input.
The four protocols (P-Best, P-Agg, J-Best, J-Agg; P1 and P2) are
`jaxpose.metrics.multihyp_protocols`.

`sample` is one jitted function: `lax.scan` over the K steps, the H hypotheses folded into the
batch (and the flip doubling it), noise either drawn from an explicit key or injected (the parity
test feeds the official draws). H and K are static arguments: each (H, K) compiles once and a
trained model is sampled at any (H, K) without retraining.

Deviations from the official code:
  * eps is computed in float32 as (x - sqrt(abar) x0) / sqrt(1 - abar), algebraically the
    official (sqrt(1/abar) x - x0) / sqrt(1/abar - 1) but without its large intermediate terms.
    The official computes it in float64 (float64 buffers promote) and casts back to float32;
    against its sampler this gives errors of order 1e-6 (see tests/parity/test_d3dp_parity.py).
  * The training noising is float32 (official: float64, then cast).
  * Loss gradients: the official `loss.backward(loss.detach())` back-propagates L dL (as MixSTE);
    jaxpose trains on L.
  * `predict` (the engine's deterministic output) returns P-Agg of the last step, the aggregate
    that needs neither ground truth root nor camera; `evaluate` gives all four protocols.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from jaxpose import losses
from jaxpose.geometry import camera
from jaxpose.geometry import skeleton as skel
from jaxpose.methods import _kwargs
from jaxpose.methods.base import Method
from jaxpose.methods.supervised import masked_mean
from jaxpose.metrics import multihyp_protocols
from jaxpose.models.layers.diffusion import cosine_schedule

# method.kwargs keys and their defaults (the official constructor defaults: validation runs with
# H = K = 1; the paper's test setting is H = 20, K = 10, the README's H = K = 5).
DEFAULTS = {
  'num_hypotheses': 1,
  'num_steps': 1,
  'num_timesteps': 1000,
  'scale': 1.0,
  'eta': 1.0,
  'seed': 0,
}

_CLAMP = 1.1  # |x| <= 1.1 s before and after the network


def settings(config: mlc.ConfigDict) -> dict[str, Any]:
  """`config.method.kwargs` over DEFAULTS; unknown keys raise with the valid ones."""
  return _kwargs.settings(config, DEFAULTS, 'd3dp')


def ddim_timesteps(num_steps: int, num_timesteps: int = 1000) -> np.ndarray:
  """The DDIM grid [t_0 = T_d - 1, ..., t_{K-1}, -1]: (K + 1,) int64.

  int(linspace(-1, T_d - 1, K + 1)) in float32 with torch's two-sided linspace (the first half
  counted from the start, the second from the end), truncated toward zero, reversed.
  """
  if num_steps < 1:
    raise ValueError(f'num_steps must be >= 1, got {num_steps}')
  n = num_steps + 1
  start, end = np.float32(-1.0), np.float32(num_timesteps - 1)
  step = np.float32((end - start) / np.float32(num_steps))
  i = np.arange(n)
  first = start + step * i.astype(np.float32)
  last = end - step * (n - 1 - i).astype(np.float32)
  grid = np.where(i < n // 2, first, last).astype(np.float32)
  return np.trunc(grid).astype(np.int64)[::-1].copy()


def ddim_coefficients(
  num_steps: int, num_timesteps: int = 1000, eta: float = 1.0
) -> dict[str, np.ndarray]:
  """Per-step DDIM constants, computed in float64 and returned as float32 (K,) arrays.

  Keys: `t` (int32 timesteps fed to the denoiser), `sqrt_ab`, `sqrt_one_minus_ab` (for eps),
  `sqrt_ab_next`, `c`, `sigma` (the update x <- sqrt_ab_next x0 + c eps + sigma z). The last
  step (t' = -1) has sqrt_ab_next = 1, c = sigma = 0, i.e. x <- x0.
  """
  ac = cosine_schedule(num_timesteps)['alphas_cumprod']
  times = ddim_timesteps(num_steps, num_timesteps)
  t, t_next = times[:-1], times[1:]
  ab = ac[t]
  ab_next = np.where(t_next >= 0, ac[np.maximum(t_next, 0)], 1.0)
  sigma = eta * np.sqrt((1 - ab / ab_next) * (1 - ab_next) / (1 - ab))
  c = np.sqrt(np.maximum(1 - ab_next - sigma**2, 0.0))
  f32 = lambda a: np.asarray(a, np.float32)
  return {
    't': t.astype(np.int32),
    'sqrt_ab': f32(np.sqrt(ab)),
    'sqrt_one_minus_ab': f32(np.sqrt(1 - ab)),
    'sqrt_ab_next': f32(np.sqrt(ab_next)),
    'c': f32(c),
    'sigma': f32(sigma),
  }


def q_sample(
  x0: jax.Array, t: jax.Array, noise: jax.Array, *, scale: float = 1.0, num_timesteps: int = 1000
) -> jax.Array:
  """Forward diffusion as the network sees it: clip(q(x_t | x0), +-1.1 s) / s.

  Args:
    x0: (B, T, J, 3) clean root-relative poses (metres).
    t: (B,) int timesteps in [0, T_d).
    noise: (B, T, J, 3) standard normal draws.
    scale: s, the signal scale.
    num_timesteps: T_d.

  Returns:
    (B, T, J, 3) float32 noisy poses / s.
  """
  sched = cosine_schedule(num_timesteps)
  a = jnp.asarray(sched['sqrt_alphas_cumprod'], jnp.float32)[t]
  b = jnp.asarray(sched['sqrt_one_minus_alphas_cumprod'], jnp.float32)[t]
  bcast = lambda v: v.reshape(v.shape + (1,) * (x0.ndim - 1))
  x = bcast(a) * (scale * x0) + bcast(b) * noise
  return jnp.clip(x, -_CLAMP * scale, _CLAMP * scale) / scale


def _flip(x: jax.Array, perm: tuple[int, ...]) -> jax.Array:
  """Horizontal flip of (..., J, C): x negated, left/right joints swapped (its own inverse)."""
  sign = jnp.ones(x.shape[-1], x.dtype).at[0].set(-1)
  return x[..., np.asarray(perm), :] * sign


def denoise(
  model,
  variables: Mapping[str, Any],
  kp2d: jax.Array,
  x: jax.Array,
  t: jax.Array,
  *,
  scale: float = 1.0,
  flip_perm: tuple[int, ...] | None = None,
  sqrt_ab: jax.Array | float,
  sqrt_one_minus_ab: jax.Array | float,
) -> tuple[jax.Array, jax.Array]:
  """One network evaluation of the sampler: (x0, eps) from the noisy hypotheses x at step t.

  Args:
    model: the denoiser (`jaxpose.models.d3dp.Model` or any module taking (x, train=, t=)).
    variables: its variables.
    kp2d: (B, T, J, C2) kp2d_norm, the condition (shared by the H hypotheses).
    x: (B, H, T, J, 3) noisy poses (unscaled, unclamped).
    t: () or (B,) int timestep.
    scale: s.
    flip_perm: joint permutation of the horizontal flip; None disables flip test-time
      augmentation (the official sampler always uses it).
    sqrt_ab: sqrt(abar_t), scalar or broadcastable to x.
    sqrt_one_minus_ab: sqrt(1 - abar_t).

  Returns:
    x0 (B, H, T, J, 3) clamped to +-1.1 s, and eps (B, H, T, J, 3).
  """
  b, h = x.shape[:2]
  xt = jnp.clip(x, -_CLAMP * scale, _CLAMP * scale) / scale
  cond = jnp.broadcast_to(kp2d[:, None], (b, h, *kp2d.shape[1:]))
  tok = jnp.concatenate([cond, xt], axis=-1).reshape(b * h, *x.shape[2:-1], -1)
  tt = jnp.broadcast_to(jnp.reshape(jnp.asarray(t), (-1, 1)), (b, h)).reshape(-1)
  if flip_perm is not None:
    tok_f = jnp.concatenate([_flip(cond, flip_perm), _flip(xt, flip_perm)], axis=-1)
    tok = jnp.concatenate([tok, tok_f.reshape(tok.shape)])
    tt = jnp.concatenate([tt, tt])
  y = model.apply(variables, tok, train=False, t=tt)
  if flip_perm is not None:
    y_plain, y_flip = jnp.split(y, 2)
    y = 0.5 * (y_plain + _flip(y_flip, flip_perm))
  x0 = jnp.clip(scale * y.reshape(x.shape), -_CLAMP * scale, _CLAMP * scale)
  eps = (x - sqrt_ab * x0) / sqrt_one_minus_ab
  return x0, eps


_SAMPLE_STATIC = (
  'model',
  'num_hypotheses',
  'num_steps',
  'skeleton',
  'scale',
  'eta',
  'flip',
  'num_timesteps',
)


@functools.partial(jax.jit, static_argnames=_SAMPLE_STATIC)
def sample(
  model,
  variables: Mapping[str, Any],
  kp2d: jax.Array,
  key: jax.Array | None = None,
  noise: jax.Array | None = None,
  *,
  num_hypotheses: int = 1,
  num_steps: int = 1,
  skeleton: str = 'h36m17',
  scale: float = 1.0,
  eta: float = 1.0,
  flip: bool = True,
  num_timesteps: int = 1000,
) -> jax.Array:
  """DDIM sampling of H hypotheses over K steps; one jitted call (scan over steps).

  Args:
    model: the denoiser (hashable: a `models.d3dp.Model` with tuple `lifter_kwargs`).
    variables: its variables.
    kp2d: (B, T, J, C2) kp2d_norm, un-flipped.
    key: PRNG key for x_T and the per-step noise (split into K keys: x_T, then z_1..z_{K-1}).
    noise: alternatively the draws themselves, (K, B, H, T, J, 3): noise[0] = x_T, noise[k] = the
      z of the update after step k - 1 (the official draw order).
    num_hypotheses: H (static).
    num_steps: K (static).
    skeleton: joint layout for the flip test-time augmentation.
    scale: s.
    eta: DDIM eta (1 = the official stochastic sampler).
    flip: flip test-time augmentation inside each step.
    num_timesteps: T_d.

  Returns:
    (B, K, H, T, J, 3) float32: x0 after every step (pose units, root not zeroed).
  """
  b, t_len, j = kp2d.shape[:3]
  shape = (b, num_hypotheses, t_len, j, 3)
  co = ddim_coefficients(num_steps, num_timesteps, eta)
  if noise is not None:
    if noise.shape != (num_steps, *shape):
      raise ValueError(
        f'noise must be (K, B, H, T, J, 3) = {(num_steps, *shape)}, got {noise.shape}'
      )
    x_init, per_step = noise[0], jnp.concatenate([noise[1:], jnp.zeros_like(noise[:1])])
    draw = lambda z: z
  elif key is not None:
    keys = jax.random.split(key, num_steps)
    x_init = jax.random.normal(keys[0], shape)
    per_step = jnp.concatenate([keys[1:], keys[:1]])  # step k draws with key k + 1
    draw = lambda k: jax.random.normal(k, shape)
  else:
    raise ValueError('sample needs a key or injected noise')
  perm = skel.get(skeleton).flip_perm if flip else None
  xs = {k: jnp.asarray(v) for k, v in co.items()}

  def step(x, inp):
    c, z = inp
    x0, eps = denoise(
      model,
      variables,
      kp2d,
      x,
      c['t'],
      scale=scale,
      flip_perm=perm,
      sqrt_ab=c['sqrt_ab'],
      sqrt_one_minus_ab=c['sqrt_one_minus_ab'],
    )
    return c['sqrt_ab_next'] * x0 + c['c'] * eps + c['sigma'] * draw(z), x0

  _, x0s = jax.lax.scan(step, x_init, (xs, per_step))
  return jnp.moveaxis(x0s, 0, 1)


def zero_root(poses: jax.Array, root: int = 0) -> jax.Array:
  """Sets joint `root` of (..., J, 3) poses to 0 (official `pred[..., root, :] = 0`)."""
  return jnp.asarray(poses).at[..., root, :].set(0.0)


def jpma(
  hyps: jax.Array, kp2d: jax.Array, root_traj: jax.Array, intrinsics: jax.Array
) -> dict[str, jax.Array]:
  """Joint-wise reprojection-based multi-hypothesis aggregation (J-Agg).

  Args:
    hyps: (B, K, H, T, J, 3) root-relative hypotheses (root joint 0), camera frame.
    kp2d: (B, T, J, C2) the un-flipped 2D input, normalised screen coordinates (channels 0-1 used).
    root_traj: (B, T, 1, 3) the root position in the camera frame (the ground truth in the
      official evaluation), same unit as hyps.
    intrinsics: (9,) or (B, 9) normalised [fx, fy, cx, cy, k1, k2, k3, p1, p2] (zero distortion
      gives the linear model used for 3DHP TS1-4).

  Returns:
    {'index': (B, K, T, J) int32 chosen hypothesis, 'pose': (B, K, T, J, 3) the assembled pose,
     'reproj': (B, K, H, T, J, 2) the projections}.
  """
  placed = hyps + root_traj[:, None, None]
  reproj = camera.project_to_2d(placed, intrinsics)
  err = jnp.linalg.norm(reproj - kp2d[:, None, None, ..., :2], axis=-1)  # (B, K, H, T, J)
  index = jnp.argmin(err, axis=2).astype(jnp.int32)  # first minimum, like torch.min
  pose = jnp.take_along_axis(hyps, index[:, :, None, ..., None], axis=2)[:, :, 0]
  return {'index': index, 'pose': pose, 'reproj': reproj}


def _hashable(model):
  """`model` with tuple lifter_kwargs (a config round trip through JSON makes them lists)."""
  try:
    hash(model)
    return model
  except TypeError:
    pairs = dict(model.lifter_kwargs).items()
    return model.clone(
      lifter_kwargs=tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in pairs)
    )


def _sample_from_config(model, variables, kp2d, key, config) -> jax.Array:
  d = settings(config)
  model = _hashable(model)
  return sample(
    model,
    variables,
    kp2d,
    key,
    num_hypotheses=int(d['num_hypotheses']),
    num_steps=int(d['num_steps']),
    skeleton=config.data.skeleton,
    scale=float(d['scale']),
    eta=float(d['eta']),
    flip=bool(config.eval.flip_test),
    num_timesteps=int(d['num_timesteps']),
  )


def loss_fn(model, params, model_state, batch, rng, config: mlc.ConfigDict):
  """Denoising loss: the x0 prediction from (kp2d, x_t, t) against x0. Returns (loss, (scalars,
  new_model_state)); batch: kp2d_norm (B, T, J, C2), pose3d_cam (B, T, J, 3), valid (B, T)."""
  d = settings(config)
  x0 = batch['pose3d_cam']
  k_t, k_eps, k_drop = jax.random.split(rng, 3)
  t = jax.random.randint(k_t, x0.shape[:1], 0, int(d['num_timesteps']))
  eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
  xt = q_sample(x0, t, eps, scale=float(d['scale']), num_timesteps=int(d['num_timesteps']))
  tok = jnp.concatenate([batch['kp2d_norm'], xt], axis=-1)
  variables = {'params': params, **model_state}
  kw = dict(train=True, t=t, rngs={'dropout': k_drop})
  if model_state:
    pred, new_state = model.apply(variables, tok, mutable=list(model_state), **kw)
  else:
    pred, new_state = model.apply(variables, tok, **kw), model_state
  total, parts = losses.combine(dict(config.method.loss), pred, batch)
  w = batch['valid'].any(axis=-1).astype(pred.dtype) if 'valid' in batch else jnp.ones(len(pred))
  loss = masked_mean(total, w)
  scalars = {'loss': loss, **{f'loss/{k}': masked_mean(v, w) for k, v in parts.items()}}
  return loss, (scalars, new_state)


def predict(
  model, variables: dict[str, Any], kp2d_norm: jax.Array, config: mlc.ConfigDict
) -> jax.Array:
  """kp2d_norm (B, T, J, C2) -> pose3d (B, T, J, 3): P-Agg (mean of the H hypotheses) of the last
  step, root joint 0. Noise from `method.kwargs.seed`, so repeated evaluations agree."""
  key = jax.random.key(int(settings(config)['seed']))
  hyps = _sample_from_config(model, variables, kp2d_norm, key, config)
  return zero_root(hyps[:, -1].mean(axis=1), skel.get(config.data.skeleton).root)


def eval_metrics(model, variables, batch, config) -> dict[str, jax.Array]:
  """Engine hook: per-frame (B, T) errors (mm) of the four protocols at the last iteration, which
  the evaluator aggregates by action next to MPJPE (= P-Agg of `predict`).

  P-Best here is the best hypothesis per frame; the official P-Best picks one hypothesis per
  evaluation batch (`multihyp_protocols.reduce_protocols` reproduces that from `evaluate`).
  """
  key = jax.random.key(int(settings(config)['seed']))
  errs = evaluate(model, variables, batch, key, config)
  out = {}
  for name in ('P_Best', 'P_Agg', 'J_Best', 'J_Agg'):
    for suffix in ('', '_p2'):
      e = errs[name + suffix][:, -1]
      out[f'{name.lower()}{suffix}_mm'] = e.min(axis=1) if name == 'P_Best' else e
  return out


def evaluate(
  model,
  variables: dict[str, Any],
  batch: Mapping[str, jax.Array],
  key: jax.Array,
  config: mlc.ConfigDict,
) -> dict[str, jax.Array]:
  """All hypotheses, JPMA and the per-frame errors of the four protocols (mm).

  Args:
    model, variables: the denoiser.
    batch: kp2d_norm (B, T, J, C2), pose3d_cam (B, T, J, 3) metres root-relative, pose3d_root
      (B, T, 1, 3) metres (ground-truth root in the camera frame), cam_intrinsics (B, 9) pixels,
      res_w, res_h (B,); optional scale_2_5d (B, T).
    key: PRNG key of the sampler.
    config: data.skeleton, eval.flip_test, method.kwargs (`DEFAULTS`).

  Returns:
    {'hyps': (B, K, H, T, J, 3) metres, root 0; 'jpma_index': (B, K, T, J); 'J_Agg_pose':
     (B, K, T, J, 3); and `multihyp_protocols.protocol_errors` in mm: 'P_Best'[_p2] (B, K, H, T),
     the others (B, K, T)}. Reduce with `multihyp_protocols.reduce_protocols`.
  """
  root = skel.get(config.data.skeleton).root
  hyps = zero_root(_sample_from_config(model, variables, batch['kp2d_norm'], key, config), root)
  cam = camera.intrinsics_px_to_norm(batch['cam_intrinsics'], batch['res_w'], batch['res_h'])
  agg = jpma(hyps, batch['kp2d_norm'], batch['pose3d_root'], cam)
  mm = 1000.0 * batch.get('scale_2_5d', jnp.ones(hyps.shape[:1] + hyps.shape[3:4]))
  gt_mm = zero_root(batch['pose3d_cam'], root) * mm[:, :, None, None]
  errs = multihyp_protocols.protocol_errors(
    hyps * mm[:, None, None, :, None, None], gt_mm, agg['index']
  )
  return {'hyps': hyps, 'jpma_index': agg['index'], 'J_Agg_pose': agg['pose'], **errs}


METHOD = Method(loss_fn=loss_fn, predict=predict, eval_metrics=eval_metrics)
