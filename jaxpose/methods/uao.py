"""UAO: uncertainty-aware test-time optimisation (TTO) of the 2D input of a frozen lifter.

Paper: Wang et al., "Uncertainty-Aware Testing-Time Optimization for 3D Human Pose Estimation",
IEEE TMM 2025, arXiv:2402.02339. Official code: github.com/xiu-cs/UAO-Pose3D at commit
cb505888df43b760cbcc6cd616f6b1232f89d131 (`main.py: test_time_optimization_Gaussian`,
`common/utils.py: gaussian_loss, project_to_2d`). Written from research/uao.md; no code copied.

Training (`loss_fn`): the lifter predicts a root-relative pose mu and a per-joint log-scale s; the
only loss is `uncertainty_nll` = mean_{T,J}(||y - mu|| * exp(-s) + s).

Test time (`tto`), for a batch of 2D inputs u and their horizontal flips u_f:
  1. pseudo ground truth mu0 = f(u).mu, mu0_f = unflip(f(u_f).mu);
  2. z <- u, z_f <- u_f, a fresh Adam (lr 1e-3, torch defaults), then `iters` (4) steps of
       L = w_prior * [nll(mu(z), sg(s(z)), mu0) + nll(unflip(mu(z_f)), sg(swap(s(z_f))), mu0_f)]
         + w_proj  * [mean||P(place(mu(z))) - u|| + mean||P(place(unflip(mu(z_f)))) - u||]
     with w_prior 0.005, w_proj 1, sg the stop-gradient, P the VideoPose3D camera projection
     (`jaxpose.geometry.camera.project_to_2d`, distortion and clamp) and place() putting the
     root-relative pose at the ground-truth root (root joint := r, others += r). Both branches
     are compared with the *non-flipped* input u. The network is frozen (eval mode);
  3. the answer is (f(z).mu + unflip(f(z_f).mu)) / 2 with the root joint set to 0.
The optimised variable is the 2D input itself (the paper speaks of a latent; the code does this).

`mode='batch'` reproduces the official optimisation exactly: one Adam state over the whole batch
and a batch-mean loss. `mode='per_sample'` (the default) vmaps the same optimisation over samples,
so each sample has its own loss; Adam is invariant to the 1/B gradient scale of the batch mean
except through eps (1e-8), so the two modes agree closely, but only per-sample results are
independent of the batch size and of padded rows.

Oracle inputs: the projection term uses the ground-truth root position and camera intrinsics.
Numbers obtained this way are not comparable with ones that use an estimated root.

Any lifter works if `model.apply(variables, x, train=False, return_uncertainty=True)` returns
(mu (B, T_out, J, 3), log_s (B, T_out, J, 1 or nothing)): `jaxpose.models.uao.Model` does, and
`jaxpose.models.uao.WithUncertainty(lifter)` adds a log-scale head to any other lifter. When T_out < T_in (a
receptive-field model) the 2D target is the centre T_out frames of the input. The projection
assumes mu in metres (camera frame): lifters trained in other units need their output rescaled.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections as mlc
import optax

from jaxpose import losses
from jaxpose.geometry import camera
from jaxpose.geometry import skeleton as skel
from jaxpose.methods import _kwargs, supervised
from jaxpose.methods.base import Method
from jaxpose.methods.supervised import masked_mean
from jaxpose.models.uao import center_frames


def _norm(x: jax.Array, flat_below: jax.Array | float = 0.0) -> jax.Array:
  """||x||_2 over the last axis, with a zero gradient where ||x|| <= flat_below.

  flat_below = 0 is torch's convention (zero gradient at 0, where jnp.linalg.norm gives NaN).
  The TTO prior starts at mu(z0) == mu0 up to float rounding: there the official (torch, same
  kernels twice) difference is exactly 0 and so is its gradient, while XLA may fuse the two
  forward passes differently and leave a ~1e-7 residual whose unit direction would become a
  full-size gradient. A small positive flat_below reproduces the official zero.
  """
  sq = jnp.sum(x * x, axis=-1)
  live = sq > jnp.square(flat_below)
  return jnp.where(live, jnp.sqrt(jnp.where(live, sq, 1.0)), jnp.sqrt(jax.lax.stop_gradient(sq)))


def _nll(pred_mu, log_s, gt, flat_below=0.0):
  if log_s.ndim == pred_mu.ndim:
    log_s = log_s[..., 0]
  per = _norm(gt - pred_mu, flat_below) * jnp.exp(-log_s) + log_s
  return per.reshape(per.shape[0], -1).mean(axis=1)


def uncertainty_nll(pred_mu: jax.Array, log_s: jax.Array, gt: jax.Array) -> jax.Array:
  """UAO's uncertainty loss (official `gaussian_loss`), one value per sample.

  mean over (T, J) of ||gt - mu||_2 * exp(-log_s) + log_s: the negative log-likelihood, up to
  constants, of a Laplace-like density on the joint error norm with scale exp(log_s).

  Args:
    pred_mu: (B, T, J, 3) predicted pose (metres).
    log_s: (B, T, J, 1) or (B, T, J) log-scale per joint (log metres).
    gt: (B, T, J, 3) target pose in the unit of pred_mu.

  Returns:
    (B,) loss per sample.
  """
  return _nll(pred_mu, log_s, gt)


def unflip(pose: jax.Array, perm: jax.Array) -> jax.Array:
  """Undoes a horizontal flip of (..., J, C): swap left/right joints and negate x (channel 0)."""
  return pose[..., perm, :].at[..., 0].multiply(-1.0)


def _place_at_root(mu: jax.Array, root: jax.Array, root_joint: int) -> jax.Array:
  """Official placement: root joint := r, every other joint += r. mu (B,T,J,3), root (B,T,1,3)."""
  return (mu + root).at[..., root_joint, :].set(root[..., 0, :])


def _mean_norm(a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-sample mean over (T, J) of ||a - b||: (B, T, J, C) -> (B,)."""
  d = _norm(a - b)
  return d.reshape(d.shape[0], -1).mean(axis=1)


def _optimise(
  apply_fn,
  u,
  u_f,
  cam,
  root,
  lr,
  w_prior,
  w_proj,
  perm,
  *,
  iters: int,
  root_joint: int,
  trajectory: bool,
):
  """The official TTO on one batch with one Adam state and a batch-mean loss (see module doc)."""
  xy, xy_f = u[..., :2], u_f[..., :2]
  conf, conf_f = u[..., 2:], u_f[..., 2:]  # extra channels (confidence) are not optimised

  def forward(z, extra):
    mu, log_s = apply_fn(jnp.concatenate([z, extra], axis=-1))
    return mu, (log_s if log_s.ndim == mu.ndim else log_s[..., None])

  mu0, _ = forward(xy, conf)
  mu0_f = unflip(forward(xy_f, conf_f)[0], perm)
  mu0, mu0_f = jax.lax.stop_gradient((mu0, mu0_f))
  # Rounding-level residuals of the prior count as zero (see _norm): 1e-5 of the pose's RMS size.
  flat = 1e-5 * jnp.sqrt(jnp.mean(jnp.square(mu0), axis=(1, 2, 3)))[:, None, None]
  target = center_frames(xy, mu0.shape[1])
  root = root.reshape(mu0.shape[0], mu0.shape[1], 1, 3)

  def loss_fn(zs):
    z, z_f = zs
    mu, s = forward(z, conf)
    mu_f, s_f = forward(z_f, conf_f)
    mu_f, s_f = unflip(mu_f, perm), s_f[..., perm, :]  # log-scales are swapped, never negated
    s, s_f = jax.lax.stop_gradient((s, s_f))
    prior = _nll(mu0, s, mu, flat) + _nll(mu0_f, s_f, mu_f, flat)
    proj = sum(
      _mean_norm(camera.project_to_2d(_place_at_root(m, root, root_joint), cam), target)
      for m in (mu, mu_f)
    )
    return jnp.mean(w_prior * prior + w_proj * proj)

  opt = optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)  # torch Adam defaults (eps outside the sqrt)

  def step(carry, _):
    zs, state = carry
    grads = jax.grad(loss_fn)(zs)
    updates, state = opt.update(grads, state, zs)
    zs = optax.apply_updates(zs, updates)
    return (zs, state), (zs if trajectory else None)

  zs0 = (xy, xy_f)
  (zs, _), traj = jax.lax.scan(step, (zs0, opt.init(zs0)), None, length=iters)
  z, z_f = zs
  pose = 0.5 * (forward(z, conf)[0] + unflip(forward(z_f, conf_f)[0], perm))
  out = {'pose3d': pose.at[..., root_joint, :].set(0.0), 'z': z, 'z_flip': z_f}
  if trajectory:
    out['z_traj'] = jnp.concatenate([xy[None], traj[0]], axis=0)
    out['z_flip_traj'] = jnp.concatenate([xy_f[None], traj[1]], axis=0)
  return out


def tto(
  model: nn.Module,
  variables: Mapping[str, Any],
  kp2d: jax.Array,
  cam: jax.Array,
  root: jax.Array,
  *,
  flip_perm: jax.Array,
  kp2d_flip: jax.Array | None = None,
  iters: int = 4,
  lr: float | jax.Array = 1e-3,
  w_prior: float | jax.Array = 0.005,
  w_proj: float | jax.Array = 1.0,
  mode: str = 'per_sample',
  root_joint: int = 0,
  trajectory: bool = False,
  chunk_size: int | None = None,
) -> dict[str, jax.Array]:
  """Uncertainty-aware test-time optimisation of a frozen lifter's 2D input.

  One jitted XLA program per (model, shapes, iters, mode, root_joint, trajectory): the Adam steps
  are a `lax.scan`, the per-sample mode a `vmap`; lr and the weights are traced, so sweeping them
  does not recompile.

  Args:
    model: lifter whose apply(..., train=False, return_uncertainty=True) gives (mu, log_s).
    variables: its frozen variables (no gradient is taken with respect to them).
    kp2d: kp2d_norm (B, T, J, C) normalised screen coordinates (C = 2, or 3 with a confidence
      that is passed through and not optimised).
    cam: (B, 9) width-normalised intrinsics [fx, fy, cx, cy, k1, k2, k3, p1, p2] of the
      non-flipped view (VideoPose3D convention).
    root: (B, T_out, 1, 3) or (B, T_out, 3) ground-truth root position, camera frame, metres.
    flip_perm: (J,) int left/right joint permutation (`skeleton.get(name).flip_perm`).
    kp2d_flip: the flipped input (B, T, J, C); default: kp2d flipped with flip_perm.
    iters: Adam steps (official `opt_iter_num` = 4).
    lr: Adam learning rate on the 2D input (official `lr_z` = 1e-3).
    w_prior: weight of the uncertainty-weighted prior (official `weight_gaussian` = 0.005).
    w_proj: weight of the 2D projection term (official `weight_proj` = 1).
    mode: 'per_sample' (an independent optimisation per sample, vmapped) or 'batch' (one
      optimisation of the batch-mean loss, the official procedure).
    root_joint: index of the root joint (placed at `root`, zeroed in the answer).
    trajectory: also return the inputs after every step.
    chunk_size: per_sample mode only: optimise this many samples at a time (`lax.map`), which
      bounds memory; None does the whole batch at once. The backward passes keep every
      activation of both branches: about 17 MB per sample for the published GUMLP (its spatial
      uMLP widens 17 joints to 102 for each of 512 channels), so batch 1024 needs ~17 GB.
      Results do not depend on it.

  Returns:
    dict with pose3d (B, T_out, J, 3) root-relative metres, flip-averaged, root joint 0;
    z, z_flip (B, T, J, 2) the optimised inputs; with `trajectory`, z_traj and z_flip_traj
    (iters + 1, B, T, J, 2): the inputs before the first step and after each step.
  """
  if mode not in ('per_sample', 'batch'):
    raise ValueError(f"tto mode must be 'per_sample' or 'batch', got {mode!r}")
  perm = jnp.asarray(flip_perm, jnp.int32)
  kp2d = jnp.asarray(kp2d, jnp.float32)
  kp2d_flip = unflip(kp2d, perm) if kp2d_flip is None else jnp.asarray(kp2d_flip, jnp.float32)
  cam, root = jnp.asarray(cam, jnp.float32), jnp.asarray(root, jnp.float32)
  hyper = jnp.asarray([lr, w_prior, w_proj], jnp.float32)
  if chunk_size is not None and (mode != 'per_sample' or chunk_size < 1):
    raise ValueError(f'chunk_size needs mode=per_sample and >= 1, got {chunk_size} ({mode})')
  return _tto_jit(
    model,
    iters,
    mode,
    root_joint,
    trajectory,
    chunk_size,
    variables,
    kp2d,
    kp2d_flip,
    cam,
    root,
    perm,
    hyper,
  )


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _tto_jit(
  model,
  iters,
  mode,
  root_joint,
  trajectory,
  chunk_size,
  variables,
  kp2d,
  kp2d_flip,
  cam,
  root,
  perm,
  hyper,
):
  variables = jax.lax.stop_gradient(variables)
  lr, w_prior, w_proj = hyper[0], hyper[1], hyper[2]
  apply_fn = partial(model.apply, variables, train=False, return_uncertainty=True)
  run = partial(_optimise, apply_fn, iters=iters, root_joint=root_joint, trajectory=trajectory)
  args = (kp2d, kp2d_flip, cam, root)
  if mode == 'batch':
    return run(*args, lr, w_prior, w_proj, perm)

  def one(u, u_f, k, r):
    out = run(u[None], u_f[None], k[None], r[None], lr, w_prior, w_proj, perm)
    return {name: (v[:, 0] if name.endswith('traj') else v[0]) for name, v in out.items()}

  if chunk_size is None:
    out = jax.vmap(one)(*args)
  else:
    out = jax.lax.map(lambda a: one(*a), args, batch_size=chunk_size)
  # vmapped trajectories come out (B, iters + 1, ...); keep the step axis first.
  return {k: (jnp.swapaxes(v, 0, 1) if k.endswith('traj') else v) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Engine hooks (jaxpose/methods/__init__.py interface).


def loss_fn(model, params, model_state, batch, rng, config: mlc.ConfigDict):
  """UAO training loss: masked mean of `uncertainty_nll`; MPJPE of mu logged alongside.

  batch: kp2d_norm (B, T, J, C), pose3d_cam (B, T_out, J, 3) root-relative metres, optional
  valid. Returns (loss, (scalars, new_model_state)).
  """
  variables = {'params': params, **model_state}
  drop, path = jax.random.split(rng)
  kw = dict(train=True, return_uncertainty=True, rngs={'dropout': drop, 'drop_path': path})
  if model_state:
    (mu, log_s), new_state = model.apply(
      variables, batch['kp2d_norm'], mutable=list(model_state), **kw
    )
  else:
    (mu, log_s), new_state = model.apply(variables, batch['kp2d_norm'], **kw), model_state
  w = batch['valid'].any(axis=-1).astype(mu.dtype) if 'valid' in batch else jnp.ones(mu.shape[0])
  loss = masked_mean(uncertainty_nll(mu, log_s, batch['pose3d_cam']), w)
  scalars = {
    'loss': loss,
    'loss/uncertainty_nll': loss,
    'mpjpe': masked_mean(losses.mpjpe(mu, batch), w),
    'log_s_mean': jnp.mean(log_s),
  }
  return loss, (scalars, new_state)


def predict(
  model, variables: dict[str, Any], kp2d_norm: jax.Array, config: mlc.ConfigDict
) -> jax.Array:
  """Plain inference (no TTO): mu, flip-averaged when config.eval.flip_test, root joint 0."""
  pred = supervised.predict(model, variables, kp2d_norm, config)
  return pred.at[..., skel.get(config.data.skeleton).root, :].set(0.0)


# method.kwargs keys and their defaults. TTO is off by default; the published evaluation setting
# (research/uao.md, configs/uao.py:tto) is 4 Adam steps at lr 1e-3, prior weight 0.005.
DEFAULTS = {
  'tto_iters': 0,
  'tto_lr': 1e-3,
  'tto_w_prior': 0.005,
  'tto_w_proj': 1.0,
  'tto_mode': 'per_sample',
  'tto_chunk_size': 256,  # per_sample mode: samples optimised at a time (0 or None = all)
}


def settings(config: mlc.ConfigDict) -> dict[str, Any]:
  """`config.method.kwargs` over DEFAULTS; unknown keys raise with the valid ones."""
  return _kwargs.settings(config, DEFAULTS, 'uao')


def predict_batch(
  model, variables: dict[str, Any], batch: Mapping[str, jax.Array], config: mlc.ConfigDict
) -> jax.Array:
  """Evaluation hook: UAO's TTO when config.method.kwargs.tto_iters > 0, else `predict`.

  config.method.kwargs holds tto_iters, tto_lr, tto_w_prior, tto_w_proj, tto_mode and
  tto_chunk_size (`DEFAULTS`; see `tto`). batch needs kp2d_norm (B, T, J, C_in), and for the TTO
  cam_intrinsics (B, 9) pixels, res_w, res_h (B,) pixels and pose3d_root (B, T_out, 1, 3) metres
  (oracle inputs, see the module docstring). Returns pose3d_cam (B, T_out, J, 3) metres, root
  joint 0.
  """
  t = mlc.ConfigDict({k[len('tto_') :]: v for k, v in settings(config).items()})
  if int(t.iters) <= 0:
    return predict(model, variables, batch['kp2d_norm'], config)
  sk = skel.get(config.data.skeleton)
  k = jnp.asarray(batch['cam_intrinsics'], jnp.float32)  # pixels -> VideoPose3D normalised
  cam = camera.intrinsics_px_to_norm(k, batch['res_w'], batch['res_h'])
  out = tto(
    model,
    variables,
    batch['kp2d_norm'],
    cam,
    batch['pose3d_root'],
    flip_perm=jnp.asarray(sk.flip_perm),
    iters=int(t.iters),
    lr=t.lr,
    w_prior=t.w_prior,
    w_proj=t.w_proj,
    mode=t.mode,
    root_joint=sk.root,
    chunk_size=(t.get('chunk_size') or None) if t.mode == 'per_sample' else None,
  )
  return out['pose3d']


METHOD = Method(loss_fn=loss_fn, predict=predict, predict_batch=predict_batch)
