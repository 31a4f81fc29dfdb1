"""DiffPose: GMM-guided diffusion refinement of an initial 3D pose (GCNdiff, DDIM sampling).

Paper: Gong, Foo, Fan, Ke, Rahmani, Liu, "DiffPose: Toward More Reliable 3D Pose Estimation",
CVPR 2023, arXiv:2211.16940. Official code: github.com/GONGJIA0208/Diffpose at commit
9a15bf80618fe21be4b01bed245d809d71b1a397 (`runners/diffpose_frame.py` train / test_hyber,
`common/utils_diff.py`, `common/generators.py`) and Diffpose_video at bf8484a5 for the video
recipe. Written from research/diffpose.md; no code copied. The networks are
`jaxpose.models.diffpose.Model` (initialiser + GCNdiff).

State x = [u, v, x, y, z] per joint (2D normalised screen coordinates, 3D root-relative metres).

Schedule   linear beta in [1e-4, 1e-3] over T_d = 51 steps (float64 linspace cast to float32),
           abar_t by a float32 cumprod; abar_{-1} = 1 (`schedule`).
Training   per pose: each joint's uv target and noise scale come from one mixture component drawn
           with the component weights (`gmm_targets`; batch key 'kp2d_gmm' (B, T, J, K, 5) =
           [w, mu_u, mu_v, s_u, s_v], see jaxpose/data/gmm.py); without mixtures the uv target is
           the 2D input and the scale the constant `uv_noise_scale` (the video recipe, 0.5).
           sigma = [s_u, s_v, 1, 1, 1]; t antithetic (n/2 + 1 draws U{0..T_d-1} and T_d - 1 - t,
           truncated to n); x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) sigma * eps; loss =
           mean over poses of sum_{j,c} (sigma * eps - eps_theta(x_t, t))^2. With
           `pose_loss_weight` > 0 the initialiser is trained jointly on the `config.method.loss`
           terms (the official code loads a separately trained GCNpose / MixSTE; the two losses
           touch disjoint parameters, so joint training equals separate training).
Sampling   (`sample`, one jitted call, chains vmapped over the S samples, lax.scan over steps)
           x_K = [uv, root-centred initial pose] (the released code adds no noise at test time;
           `start_noise` gives the paper's GMM start sqrt(abar_K) x + sqrt(1 - abar_K) sigma eps);
           DDIM on the skip grid (`skip_grid`: 'uniform' range(0, N, N // n) or 'quad'
           int(linspace(0, sqrt(0.8 N), n)^2)), for (i, j) over the reversed pairs of seq and
           [-1] + seq[:-1]: eps = f(x, i); x0 = (x - sqrt(1 - a_i) eps) / sqrt(a_i);
           c1 = eta sqrt((1 - a_i/a_j)(1 - a_j)/(1 - a_i)); c2 = sqrt(1 - a_j - c1^2);
           x <- sqrt(a_j) x0 + c1 z + c2 eps. The pose is the mean over samples of the final x,
           channels 2:5, root-centred; every sample is also returned for best-of-N metrics.

Settings are `config.method.kwargs` (DEFAULTS below; unknown keys raise).

Deviations from the official code:
  * Root centring: the official `x[:, :, :] -= x[:, :1, :]` on torch tensors only zeroes joint 0
    (the right-hand side aliases the left; on CUDA it is a race). Here the pose is centred
    (x - x_root) unless `official_root_centring=True`, which reproduces the released behaviour
    (and the parity fixture).
  * True K-component mixtures are supported (the released data files hold (1, 0, 0) weights).
  * The unused test-time draw `e = randn_like(x)` of test_hyber is not made.
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
from jaxpose.geometry import skeleton as skel
from jaxpose.methods import _kwargs
from jaxpose.methods.base import Method
from jaxpose.methods.supervised import masked_mean
from jaxpose.models.layers.diffusion import alphas_cumprod, beta_schedule

DEFAULTS = {
  'num_timesteps': 51,  # T_d
  'beta_schedule': 'linear',  # 'linear' | 'quad' | 'const'
  'beta_start': 1e-4,
  'beta_end': 1e-3,
  'test_num_timesteps': 24,  # N of the skip grid (config.testing.test_num_diffusion_timesteps)
  'test_steps': 2,  # n (config.testing.test_timesteps)
  'skip_type': 'uniform',  # 'uniform' | 'quad'
  'eta': 0.0,
  'num_samples': 1,  # S (config.testing.test_times)
  'official_root_centring': False,
  'flip_init': False,  # flip-averaged initial pose (the video recipe's MixSTE)
  'centre_init': True,  # root-centre the initial pose (the video code does not)
  'uv_noise_scale': 0.5,  # uv noise scale without mixtures (video recipe)
  'pose_loss_weight': 1.0,  # train the initialiser jointly (0: keep it fixed)
  'seed': 0,
}


def settings(config: mlc.ConfigDict) -> dict[str, Any]:
  """`config.method.kwargs` over DEFAULTS; unknown keys raise with the valid ones."""
  return _kwargs.settings(config, DEFAULTS, 'diffpose')


# ------------------------------------------------------------------------------- schedule


def skip_grid(num_test_timesteps: int, steps: int, kind: str = 'uniform') -> tuple[int, ...]:
  """The DDIM timesteps seq (ascending): 'uniform' range(0, N, N // n), 'quad'
  int(linspace(0, sqrt(0.8 N), n)^2)."""
  if kind == 'uniform':
    return tuple(range(0, num_test_timesteps, max(num_test_timesteps // steps, 1)))
  if kind == 'quad':
    return tuple(int(s) for s in np.linspace(0, np.sqrt(num_test_timesteps * 0.8), steps) ** 2)
  raise ValueError(f"skip_type must be 'uniform' or 'quad', got {kind!r}")


def ddim_coefficients(seq: tuple[int, ...], b: np.ndarray, eta: float) -> dict[str, np.ndarray]:
  """Per-step constants of `generalized_steps` in step order (reversed seq), float32 (K,) arrays:
  t, sqrt_a, sqrt_1ma (sqrt(1 - a)), sqrt_a_next, c1, c2 (computed in float32, as torch)."""
  ac = np.concatenate([np.ones(1, np.float32), alphas_cumprod(b)])  # index t + 1; a_{-1} = 1
  seq_next = [-1, *seq[:-1]]
  t = np.asarray(seq[::-1], np.int64)
  a = ac[t + 1]
  an = ac[np.asarray(seq_next[::-1], np.int64) + 1]
  one = np.float32(1)
  c1 = np.float32(eta) * np.sqrt((one - a / an) * (one - an) / (one - a))
  c2 = np.sqrt((one - an) - c1**2)
  f32 = lambda v: np.asarray(v, np.float32)
  return {
    't': f32(t),
    'sqrt_a': f32(np.sqrt(a)),
    'sqrt_1ma': f32(np.sqrt(one - a)),
    'sqrt_a_next': f32(np.sqrt(an)),
    'c1': f32(c1),
    'c2': f32(c2),
  }


# ------------------------------------------------------------------------------- training


def antithetic_timesteps(key: jax.Array, n: int, num_timesteps: int) -> jax.Array:
  """n//2 + 1 draws of U{0..T_d-1} followed by their mirrors T_d - 1 - t, truncated to n: (n,)."""
  t = jax.random.randint(key, (n // 2 + 1,), 0, num_timesteps)
  return jnp.concatenate([t, num_timesteps - t - 1])[:n]


def gmm_targets(key: jax.Array, gmm: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Draws one mixture component per joint with the component weights.

  Args:
    key: PRNG key.
    gmm: (..., J, K, 5) [w, mu_u, mu_v, s_u, s_v] per component (weights sum to 1 over K).

  Returns:
    uv (..., J, 2) the component means, scale (..., J, 2) their noise scales.
  """
  logits = jnp.log(jnp.maximum(gmm[..., 0], 0.0))
  k = jax.random.categorical(key, logits, axis=-1)  # (..., J)
  comp = jnp.take_along_axis(gmm, k[..., None, None], axis=-2)[..., 0, :]
  return comp[..., 1:3], comp[..., 3:5]


def q_sample(
  x0: jax.Array, t: jax.Array, eps: jax.Array, noise_scale: jax.Array, b: np.ndarray
) -> jax.Array:
  """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) (noise_scale * eps).

  Args:
    x0, eps, noise_scale: (N, J, C) (or any (N, ...) shape).
    t: (N,) int timesteps.
    b: (T_d,) float32 betas.
  """
  a = jnp.asarray(alphas_cumprod(b))[t].reshape((-1,) + (1,) * (x0.ndim - 1))
  return x0 * jnp.sqrt(a) + (noise_scale * eps) * jnp.sqrt(1.0 - a)


def denoising_loss(eps_scaled: jax.Array, pred: jax.Array) -> jax.Array:
  """Per pose sum over joints and channels of (sigma * eps - eps_hat)^2: (..., J, C) -> (...)."""
  return jnp.sum(jnp.square(eps_scaled - pred), axis=(-2, -1))


def _apply(model, variables, *args, rngs, method, model_state):
  if model_state:
    return model.apply(
      variables, *args, train=True, rngs=rngs, method=method, mutable=list(model_state)
    )
  return model.apply(variables, *args, train=True, rngs=rngs, method=method), model_state


def loss_fn(model, params, model_state, batch, rng, config: mlc.ConfigDict):
  """GCNdiff epsilon loss (+ the initialiser's supervised loss). Returns (loss, (scalars,
  new_model_state)). batch: kp2d_norm (B, T, J, C2), pose3d_cam (B, T, J, 3) metres, valid (B, T),
  optional kp2d_gmm (B, T, J, K, 5) with means in normalised screen coordinates
  (`jaxpose.data.gmm.normalise` of the builder's pixel means)."""
  d = settings(config)
  b = beta_schedule(d['beta_schedule'], d['beta_start'], d['beta_end'], int(d['num_timesteps']))
  k_gmm, k_t, k_eps, k_drop, k_pose = jax.random.split(rng, 5)
  root = skel.get(config.data.skeleton).root
  gt = batch['pose3d_cam']
  xyz = gt - gt[..., root : root + 1, :]
  kp2d = batch['kp2d_norm'][..., :2]
  if 'kp2d_gmm' in batch:
    uv, s_uv = gmm_targets(k_gmm, batch['kp2d_gmm'])
  else:
    uv, s_uv = kp2d, jnp.full_like(kp2d, float(d['uv_noise_scale']))
  x0 = jnp.concatenate([uv, xyz], -1)  # (B, T, J, 5)
  sigma = jnp.concatenate([s_uv, jnp.ones_like(xyz)], -1)
  lead = x0.shape[:2]
  n = lead[0] * lead[1]
  t = antithetic_timesteps(k_t, n, int(d['num_timesteps']))
  eps = sigma * jax.random.normal(k_eps, x0.shape, x0.dtype)
  xt = q_sample(x0.reshape(n, *x0.shape[2:]), t, eps.reshape(n, *x0.shape[2:]), 1.0, b)
  variables = {'params': params, **model_state}
  pred, state = _apply(
    model,
    variables,
    xt.reshape(x0.shape),
    t.reshape(lead).astype(jnp.float32),
    rngs={'dropout': k_drop},
    method='denoise',
    model_state=model_state,
  )
  valid = batch['valid'].astype(pred.dtype) if 'valid' in batch else jnp.ones(lead, pred.dtype)
  diff = masked_mean(denoising_loss(eps, pred), valid)
  scalars = {'loss/denoise': diff}
  loss = diff
  if float(d['pose_loss_weight']) > 0:
    x_in = batch['kp2d_norm'][..., : model.in_channels]
    init, state = _apply(
      model,
      {'params': params, **state},
      x_in,
      rngs={'dropout': k_pose},
      method='initial_pose',
      model_state=state,
    )
    total, parts = losses.combine(dict(config.method.loss), init, batch)
    w = valid.any(axis=-1).astype(pred.dtype) if valid.ndim > 1 else valid
    pose = masked_mean(total, w)
    loss = loss + float(d['pose_loss_weight']) * pose
    scalars.update(
      {'loss/pose': pose, **{f'loss/pose_{k}': masked_mean(v, w) for k, v in parts.items()}}
    )
  scalars['loss'] = loss
  return loss, (scalars, state)


# ------------------------------------------------------------------------------- sampling


def centre_root(pose: jax.Array, root: int = 0, *, official: bool = False) -> jax.Array:
  """Root-centres (..., J, 3). official=True reproduces the released in-place aliasing: joint
  `root` is set to 0 and the other joints are left unchanged."""
  if official:
    return pose.at[..., root, :].set(0.0)
  return pose - pose[..., root : root + 1, :]


_STATIC = (
  'model',
  'seq',
  'eta',
  'num_samples',
  'schedule',
  'test_num_timesteps',
  'official_root_centring',
  'flip_init',
  'centre_init',
  'skeleton',
  'return_chain',
)


@functools.partial(jax.jit, static_argnames=_STATIC)
def sample(
  model,
  variables: Mapping[str, Any],
  kp2d: jax.Array,
  key: jax.Array | None = None,
  noise: jax.Array | None = None,
  start_noise: jax.Array | None = None,
  *,
  seq: tuple[int, ...] = (0, 12),
  eta: float = 0.0,
  num_samples: int = 1,
  schedule: tuple[str, float, float, int] = ('linear', 1e-4, 1e-3, 51),
  test_num_timesteps: int = 24,
  official_root_centring: bool = False,
  flip_init: bool = False,
  centre_init: bool = True,
  skeleton: str = 'h36m17',
  return_chain: bool = False,
) -> dict[str, jax.Array]:
  """DiffPose inference: initial pose, then DDIM with GCNdiff; chains vmapped over samples.

  Args:
    model: `jaxpose.models.diffpose.Model` (static).
    variables: its variables.
    kp2d: kp2d_norm (B, T, J, C2); channels 0-1 are the uv condition.
    key: PRNG key for the per-step z (only drawn when eta > 0).
    noise: alternatively the per-step draws (K, S, B, T, J, C2 + 3) (K = len(seq)).
    start_noise: (S, B, T, J, C2 + 3) sigma * eps: start from sqrt(abar_N) x + sqrt(1 - abar_N)
      start_noise (N = test_num_timesteps; the paper's GMM start); None = the released clean start.
    seq: ascending timesteps (`skip_grid`).
    eta: DDIM eta.
    num_samples: S.
    schedule: (beta_schedule, beta_start, beta_end, T_d).
    test_num_timesteps: N (only for start_noise).
    official_root_centring: reproduce the released root "centring" (joint 0 zeroed only).
    flip_init: average the initial pose with the un-flipped prediction on the flipped input.
    centre_init: root-centre the initial pose (frame code: yes; video code: no).
    skeleton: joint layout (root joint, flip pairs).
    return_chain: also return every x and x0 (memory: K x S x the state).

  Returns:
    {'init': (B, T, J, 3) the initial pose as fed to the chains, 'samples': (S, B, T, J, 3) root-centred final
    3D of every chain, 'pose': (B, T, J, 3) the official output (mean over S of the final state,
    channels 2:, root-centred); with return_chain 'xs' (K + 1, S, B, T, J, C) and 'x0s'
    (K, S, B, T, J, C)}.
  """
  sk = skel.get(skeleton)
  cm = ddim_coefficients(seq, beta_schedule(*schedule), eta)
  cm = {k: jnp.asarray(v) for k, v in cm.items()}
  c2 = model.in_channels
  uv = kp2d[..., :c2]
  init = model.apply(variables, uv, train=False, method='initial_pose')
  if flip_init:
    fl = model.apply(variables, skel.flip_pose(uv, sk), train=False, method='initial_pose')
    init = 0.5 * (init + skel.flip_pose(fl, sk))
  if centre_init:
    init = centre_root(init, sk.root, official=official_root_centring)
  x = jnp.broadcast_to(jnp.concatenate([uv, init], -1), (num_samples, *uv.shape[:-1], c2 + 3))
  if start_noise is not None:
    a = alphas_cumprod(beta_schedule(*schedule))[test_num_timesteps]
    x = x * np.float32(np.sqrt(a)) + start_noise * np.float32(np.sqrt(1 - a))
  k = len(seq)
  if noise is None:
    if eta > 0 and key is None:
      raise ValueError('sample with eta > 0 needs a key or injected noise')
    keys = jax.random.split(key if key is not None else jax.random.key(0), k * num_samples)
    zs = keys.reshape(k, num_samples)
    draw = (
      (lambda kk: jax.random.normal(kk, x.shape[1:]))
      if eta > 0
      else (lambda kk: jnp.zeros(x.shape[1:]))
    )
  else:
    if noise.shape != (k, *x.shape):
      raise ValueError(f'noise must be (K, S, B, T, J, C) = {(k, *x.shape)}, got {noise.shape}')
    zs, draw = noise, (lambda z: z)

  def chain(x_s, z_s):  # one sample: x_s (B, T, J, C), z_s (K, ...)
    def step(xc, inp):
      c, z = inp
      et = model.apply(variables, xc, c['t'], train=False, method='denoise')
      x0 = (xc - et * c['sqrt_1ma']) / c['sqrt_a']
      return c['sqrt_a_next'] * x0 + c['c1'] * draw(z) + c['c2'] * et, (xc, x0)

    last, (xs, x0s) = jax.lax.scan(step, x_s, (cm, z_s))
    return last, xs, x0s

  last, xs, x0s = jax.vmap(chain, in_axes=(0, 1), out_axes=(0, 1, 1))(x, zs)
  out = {
    'init': init,  # as fed to the chains
    'samples': centre_root(last[..., c2:], sk.root, official=official_root_centring),
    'pose': centre_root(last.mean(0)[..., c2:], sk.root, official=official_root_centring),
  }
  if return_chain:
    out['xs'] = jnp.concatenate([xs, last[None]], 0)
    out['x0s'] = x0s
  return out


def _hashable(model):
  """`model` with tuple fields (a config round trip through JSON turns tuples into lists)."""
  fix = lambda v: tuple(fix(x) for x in v) if isinstance(v, (list, tuple)) else v
  return model.clone(pose_kwargs=fix(model.pose_kwargs), edges=fix(model.edges))


def sample_from_config(model, variables, kp2d, key, config: mlc.ConfigDict, **kw):
  """`sample` with the settings of `config.method.kwargs`."""
  d = settings(config)
  model = _hashable(model)
  seq = skip_grid(int(d['test_num_timesteps']), int(d['test_steps']), d['skip_type'])
  sched = (
    d['beta_schedule'],
    float(d['beta_start']),
    float(d['beta_end']),
    int(d['num_timesteps']),
  )
  return sample(
    model,
    variables,
    kp2d,
    key,
    seq=seq,
    eta=float(d['eta']),
    num_samples=int(d['num_samples']),
    schedule=sched,
    test_num_timesteps=int(d['test_num_timesteps']),
    official_root_centring=bool(d['official_root_centring']),
    flip_init=bool(d['flip_init']),
    centre_init=bool(d['centre_init']),
    skeleton=config.data.skeleton,
    **kw,
  )


def predict(
  model, variables: dict[str, Any], kp2d_norm: jax.Array, config: mlc.ConfigDict
) -> jax.Array:
  """kp2d_norm (B, T, J, C) -> pose3d (B, T, J, 3): the mean of the S chains (the official output).
  Noise from `method.kwargs.seed`, so repeated evaluations agree."""
  key = jax.random.key(int(settings(config)['seed']))
  return sample_from_config(model, variables, kp2d_norm, key, config)['pose']


def eval_metrics(model, variables, batch, config: mlc.ConfigDict) -> dict[str, jax.Array]:
  """Engine hook, only with num_samples S > 1: the per-pose best of the S chains (mm, (B, T)),
  `best_of_s_mpjpe_mm` and `best_of_s_p_mpjpe_mm` (the paper's multi-hypothesis oracle; the
  released evaluation averages the S samples instead, which is `predict`)."""
  d = settings(config)
  if int(d['num_samples']) < 2:
    return {}
  from jaxpose.metrics import multihyp

  root = skel.get(config.data.skeleton).root
  key = jax.random.key(int(d['seed']))
  samples = sample_from_config(model, variables, batch['kp2d_norm'], key, config)['samples']
  scale = 1000.0 * batch.get('scale_2_5d', jnp.ones(samples.shape[1:3]))[..., None, None]
  hyps = jnp.moveaxis(samples, 0, 2) * scale[:, :, None]  # (B, T, S, J, 3) mm
  gt = batch['pose3d_cam']
  gt = (gt - gt[..., root : root + 1, :]) * scale
  return {
    'best_of_s_mpjpe_mm': multihyp.mpjpe_best_of(hyps, gt),
    'best_of_s_p_mpjpe_mm': multihyp.p_mpjpe_best_of(hyps, gt),
  }


METHOD = Method(loss_fn=loss_fn, predict=predict, eval_metrics=eval_metrics)
