"""Platypose: zero-shot multi-hypothesis lifting by energy-guided sampling of a 3D motion prior.

Paper: Pierzchlewicz, da Silva, Cotton, Sinz, "Platypose: Calibrated Zero-Shot Multi-Hypothesis 3D
Human Motion Estimation", 2024, arXiv:2403.06164. Official code: github.com/sinzlab/platypose at
commit 6a4ae0ce5b46f7d9cad6ee21ff903830edf92928 (`diffusion/{gaussian_diffusion,respace}.py`,
`energies.py`, `pipeline.py`, `scripts/{train,evaluate}.py`, `propose/.../Camera.py`); no licence
file, studied, not copied. Written from research/platypose.md. The prior is
`jaxpose.models.platypose.Model` (MDM, predicts x0); it never sees 2D data.

Diffusion   50-step cosine schedule (abar(u) = cos^2((u + 0.008) / 1.008 pi / 2), beta clipped at
            0.999), respaced to 20 steps m_k = int(linspace(0, 49, 20)) with spaced betas
            1 - abar_{m_k} / abar_{m_{k-1}}; the network sees m_k. Coefficients are float64 on the
            host, float32 in traced code (as the official `_extract_into_tensor`).
Training    (`loss_fn`) k ~ U{0..19}, x_k = sqrt(abar'_k) x0 + sqrt(1 - abar'_k) eps, loss = the
            official `masked_l2`: sum over a clip's elements / (B T J 3), averaged over the batch
            (the batch size divides twice, as officially). x0 = the H36M motion with the root slot
            holding the absolute trajectory (`center_pose`); the rotation/mirror augmentation of
            the recipe is `augment` (applied by the method, not by the data pipeline).
Sampling    (`sample`) DDIM (eta 0) from spaced step 19 - skip down to 0, starting at
            x = sqrt(1 - abar'_start) z0 (q_sample of a zero init). At each step x0-hat = MDM(x, m_k)
            is refined by S steps of gradient descent on the reprojection energy E(x0-hat) (N,)
            with the official plateau rule (ReduceLROnPlateau(min, factor 0.1, patience 0,
            threshold 1e-4 rel, eps 1e-8), a fresh one per diffusion step, stepped with the mean
            energy over the N samples BEFORE each update; the lr starts at `energy_scale`). The
            inner loop is a `lax.scan` whose carry is (x0, lr, best, stopped); because the
            official lr is shared, the samples are coupled through the mean. `independent_samples`
            gives each sample its own lr and plateau state (a per-sample schedule; not the
            official behaviour). A NaN energy stops the inner loop (for all samples, or for that
            sample when independent). DDIM then re-derives eps from the guided x0. The result is
            the guided x0 of the last step.
Energy      (`multi_view_energy`) P = x0 + root (the ground-truth world root trajectory in the
            official evaluation; the sample's own joint 0 is a free slot the energy drives to 0),
            projected by each camera (propose `Camera.proj2D`, row-vector convention, transposed
            intrinsics, OpenCV-style radial/tangential distortion in normalised image space);
            E = sum_cameras sum_frames mean_{joints, xy} w (proj - x2d)^2. Multi-camera = more
            cameras in the sum.

Settings are `config.method.kwargs` (DEFAULTS; unknown keys raise). The H36M/3DHP/3DPW
evaluation settings are configs/platypose.py.

Deviations: the official evaluation leaks ground truth (GT root added before projection, the
detected root replaced by the projected GT root, per-joint weights from the GT 2D error;
`official_observation` reproduces it). `leak_free_observation` builds the observation from the
2D input alone (root trajectory from an estimate you supply, unit weights).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from jaxpose.geometry import skeleton as skel
from jaxpose.methods import _kwargs
from jaxpose.methods.base import Method
from jaxpose.methods.supervised import masked_mean
from jaxpose.metrics import sampling
from jaxpose.models.layers.diffusion import cosine_schedule

DEFAULTS = {
  'num_timesteps': 50,
  'num_steps': 20,  # respacing 'ddim20'
  'skip_timesteps': 4,
  'num_samples': 200,  # N
  'num_substeps': 10,  # S
  'energy_scale': 30.0,
  'eta': 0.0,
  'independent_samples': False,
  'lr_factor': 0.1,
  'lr_threshold': 1e-4,
  'augment': True,  # rotation about the vertical axis + mirror (training)
  'nominal_focal': 2.29,  # `predict` only: H36M's ~1145 px focal in normalised screen units
  'nominal_depth': 5.0,  # `predict` only: assumed root depth, metres
  'seed': 0,
}


def settings(config: mlc.ConfigDict) -> dict[str, Any]:
  """`config.method.kwargs` over DEFAULTS; unknown keys raise with the valid ones."""
  return _kwargs.settings(config, DEFAULTS, 'platypose')


# ------------------------------------------------------------------------------- schedule


def spaced_schedule(num_timesteps: int = 50, num_steps: int = 20) -> dict[str, np.ndarray]:
  """The respaced process: `timestep_map` (K,) int, `alphas_cumprod` (K,) float64 (the cumprod
  of the spaced betas, as SpacedDiffusion) and `alphas_cumprod_prev`."""
  # The cosine betas (clipped at 0.999) are D3DP's; guided-diffusion's betas_for_alpha_bar agrees.
  ac = np.cumprod(1.0 - cosine_schedule(num_timesteps)['betas'])
  keep = np.linspace(0, num_timesteps - 1, num_steps).astype(int)
  last, new_betas = 1.0, []
  for i in keep:
    new_betas.append(1 - ac[i] / last)
    last = ac[i]
  ac_s = np.cumprod(1.0 - np.asarray(new_betas))
  return {
    'timestep_map': keep.astype(np.int64),
    'alphas_cumprod': ac_s,
    'alphas_cumprod_prev': np.concatenate([[1.0], ac_s[:-1]]),
  }


def _step_constants(num_timesteps, num_steps, skip, eta):
  s = spaced_schedule(num_timesteps, num_steps)
  ks = np.arange(num_steps - skip)[::-1]
  ac, acp = s['alphas_cumprod'], s['alphas_cumprod_prev']
  f32 = lambda v: np.asarray(v, np.float32)
  ab, abp = f32(ac[ks]), f32(acp[ks])
  one = np.float32(1)
  sigma = np.float32(eta) * np.sqrt((one - abp) / (one - ab)) * np.sqrt(one - ab / abp)
  return {
    'm': s['timestep_map'][ks].astype(np.int32),
    'sra': f32(np.sqrt(1.0 / ac[ks])),
    'srm1': f32(np.sqrt(1.0 / ac[ks] - 1)),
    'sqrt_abp': np.sqrt(abp),
    'c_eps': np.sqrt(one - abp - sigma**2),
    'sigma': f32(sigma * (ks != 0)),
    'start': f32(np.sqrt(1.0 - ac[ks[0]])),  # q_sample(0, k_start, z0) = sqrt(1 - abar) z0
  }


# ------------------------------------------------------------------------- camera / energy


def project(points: jax.Array, cam: Mapping[str, jax.Array]) -> jax.Array:
  """propose `Camera.proj2D` (distort=True): world points (..., 3) -> image (..., 2).

  cam: intrinsic_matrix (3, 3) stored transposed (rows [fx, 0, 0], [skew, fy, 0], [cx, cy, 1]),
  rotation_matrix (3, 3), translation_vector (1, 3), tangential_distortion (1, 2) [p1, p2],
  radial_distortion (1, 2) or (1, 3) [k1, k2(, k3)]. Row-vector convention:
  p_cam = (P - T) R^-1; [u, v, w] = p_cam K; (u, v) / w; distortion in normalised image space.
  """
  k = cam['intrinsic_matrix']
  fx, fy, cx, cy, skew = k[0, 0], k[1, 1], k[2, 0], k[2, 1], k[1, 0]
  p = (points - cam['translation_vector'].reshape(3)) @ jnp.linalg.inv(cam['rotation_matrix'])
  uvw = p @ k
  uv = uvw[..., :2] / uvw[..., 2:]
  yn = (uv[..., 1] - cy) / fy
  xn = (uv[..., 0] - cx - skew * yn) / fx
  r2 = xn**2 + yn**2
  rad = (
    jnp.zeros(3, points.dtype)
    .at[: cam['radial_distortion'].size]
    .set(cam['radial_distortion'].reshape(-1))
  )
  kappa = 1 + rad[0] * r2 + rad[1] * r2**2 + rad[2] * r2**3
  p1, p2 = cam['tangential_distortion'].reshape(2)
  xd = xn * kappa + (2 * p1 * xn * yn + p2 * (r2 + 2 * xn**2))
  yd = yn * kappa + (2 * p2 * xn * yn + p1 * (r2 + 2 * yn**2))
  return jnp.stack([xd * fx + cx + skew * yd, yd * fy + cy], -1)


def multi_view_energy(x0: jax.Array, obs: Mapping[str, Any]) -> jax.Array:
  """The `multi_view` energy of samples.

  Args:
    x0: (N, T, J, 3) samples (root slot = trajectory offset, other joints root-relative).
    obs: 'root' (T, 1, 3) world root trajectory added to every joint; 'x2d' (C, T, J, 2) and
      'weights' (C, T, J, 2) per camera; 'cameras' {name: (C, ...)} (see `project`).

  Returns:
    (N,) energy: sum over cameras and frames of the weighted mean squared reprojection error.
  """
  pts = x0 + obs['root']

  def one(x2d, w, cam):
    return (jnp.square(project(pts, cam) - x2d) * w).mean(-1).mean(-1).sum(-1)  # (N,)

  return jax.vmap(one)(obs['x2d'], obs['weights'], obs['cameras']).sum(0)


def official_observation(
  pose3d_world: jax.Array,
  x2d: jax.Array,
  cameras: Mapping[str, Any],
  *,
  gt_keypoints: bool = False,
  root: int = 0,
) -> dict[str, Any]:
  """The evaluate.py observation (ground-truth leakage included, research/platypose.md §3.3).

  Args:
    pose3d_world: (T, J, 3) ground-truth world poses (absolute).
    x2d: (C, T, J, 2) detected keypoints (image coordinates of `project`).
    cameras: per-camera parameters with a leading C axis.
    gt_keypoints: use the projected ground truth as the 2D (keypoints 'gt'; unit weights).
    root: root joint.

  Returns:
    {'root': (T, 1, 3), 'x2d', 'weights': (C, T, J, 2), 'cameras'}: the detected root replaced by
    the projected GT root and w = clip(1 / (80 |proj(GT) - x2d|), 0, 2), root weight 1.
  """
  proj = jax.vmap(lambda cam: project(pose3d_world, cam))(cameras)  # (C, T, J, 2)
  if gt_keypoints:
    return {
      'root': pose3d_world[:, root : root + 1],
      'x2d': proj,
      'weights': jnp.ones_like(proj),
      'cameras': cameras,
    }
  x2d = x2d - x2d[..., root : root + 1, :] + proj[..., root : root + 1, :]
  err = jnp.abs(proj - x2d).at[..., root, :].set(1 / 80)
  w = jnp.clip(1 / err / 80, 0, 2)
  return {'root': pose3d_world[:, root : root + 1], 'x2d': x2d, 'weights': w, 'cameras': cameras}


def leak_free_observation(
  root_traj: jax.Array, x2d: jax.Array, cameras: Mapping[str, Any], weights: jax.Array | None = None
) -> dict[str, Any]:
  """An observation without ground truth: the root trajectory (T, 1, 3) is an estimate (e.g. from
  a lifter or a depth prior) and the weights (C, T, J, 2) default to 1 (or detector confidences)."""
  w = jnp.ones_like(x2d) if weights is None else weights
  return {'root': root_traj, 'x2d': x2d, 'weights': w, 'cameras': cameras}


# ------------------------------------------------------------------------------ guidance


def guide(
  x0: jax.Array,
  energy_fn,
  *,
  num_substeps: int,
  energy_scale: float,
  independent_samples: bool = False,
  factor: float = 0.1,
  threshold: float = 1e-4,
) -> tuple[jax.Array, jax.Array]:
  """S gradient steps on E(x0) with the plateau learning-rate rule; a `lax.scan`.

  Args:
    x0: (N, ...) samples.
    energy_fn: x0 -> (N,) energies.
    num_substeps: S.
    energy_scale: the initial lr.
    independent_samples: per-sample lr and plateau state instead of the official shared one.
    factor, threshold: ReduceLROnPlateau's (mode min, patience 0, relative threshold).

  Returns:
    (guided x0, energies (S, N) at every substep before its update; NaN once stopped).
  """
  n = x0.shape[0]
  shape = (n,) if independent_samples else ()
  lr0 = jnp.full(shape, energy_scale, jnp.float32)
  best0 = jnp.full(shape, jnp.inf, jnp.float32)
  stop0 = jnp.zeros(shape, bool)
  bcast = lambda v: v.reshape(v.shape + (1,) * (x0.ndim - v.ndim))

  def substep(carry, _):
    x, lr, best, stopped = carry
    e, vjp = jax.vjp(energy_fn, x)
    (g,) = vjp(jnp.ones_like(e))
    nan = jnp.isnan(e) if independent_samples else jnp.isnan(e).any()
    stopped = stopped | nan
    metric = e if independent_samples else e.mean()
    better = metric < best * (1 - threshold)
    reduced = lr * factor
    new_lr = jnp.where(better, lr, jnp.where(lr - reduced > 1e-8, reduced, lr))
    active = ~stopped
    lr = jnp.where(active, new_lr, lr)
    best = jnp.where(active & better, metric, best)
    x = jnp.where(bcast(active), x - bcast(lr) * g, x)
    e_out = (
      jnp.where(active, e, jnp.nan)
      if independent_samples
      else jnp.where(active, e, jnp.full_like(e, jnp.nan))
    )
    return (x, lr, best, stopped), e_out

  (x0, *_), energies = jax.lax.scan(substep, (x0, lr0, best0, stop0), None, length=num_substeps)
  return x0, energies


_STATIC = (
  'model',
  'num_samples',
  'num_substeps',
  'skip_timesteps',
  'num_timesteps',
  'num_steps',
  'eta',
  'independent_samples',
  'factor',
  'threshold',
  'return_chain',
)


@functools.partial(jax.jit, static_argnames=_STATIC)
def sample(
  model,
  variables: Mapping[str, Any],
  obs: Mapping[str, Any],
  key: jax.Array | None = None,
  noise: jax.Array | None = None,
  *,
  energy_scale: float | jax.Array = 30.0,
  num_samples: int = 200,
  num_substeps: int = 10,
  skip_timesteps: int = 4,
  num_timesteps: int = 50,
  num_steps: int = 20,
  eta: float = 0.0,
  independent_samples: bool = False,
  factor: float = 0.1,
  threshold: float = 1e-4,
  return_chain: bool = False,
) -> dict[str, jax.Array]:
  """Energy-guided DDIM sampling of N motions per observed sequence (vmapped over B).

  Args:
    model: `jaxpose.models.platypose.Model` (static).
    variables: its variables (params and buffers).
    obs: the observation with a leading batch axis B: 'root' (B, T, 1, 3), 'x2d' and 'weights'
      (B, C, T, J, 2), 'cameras' {name: (B, C, ...)} (see `multi_view_energy`).
    key: PRNG key (z0 and the per-step z).
    noise: alternatively the draws (B, K + 1, N, T, J, 3): noise[:, 0] = z0, noise[:, k] = the z
      of step k (K = num_steps - skip_timesteps steps).
    energy_scale: the guidance lr (traced: one compilation serves every scale).
    num_samples: N.
    num_substeps: S.
    skip_timesteps: spaced steps skipped at the start.
    num_timesteps, num_steps: the base and the respaced process lengths.
    eta: DDIM eta (official: 0).
    independent_samples: per-sample plateau schedules (see `guide`).
    factor, threshold: the plateau rule.
    return_chain: also return every step's x, unguided and guided x0 and energies.

  Returns:
    {'samples': (B, N, T, J, 3) guided x0 of the last step (root slot = the trajectory offset)};
    with return_chain also 'x' (B, K, N, T, J, 3) the state after each step, 'x0_before',
    'x0' (B, K, N, T, J, 3) and 'energy' (B, K * S, N).
  """
  c = {
    k: jnp.asarray(v)
    for k, v in _step_constants(num_timesteps, num_steps, skip_timesteps, eta).items()
  }
  steps = num_steps - skip_timesteps
  b, t = obs['x2d'].shape[0], obs['x2d'].shape[2]
  shape = (num_samples, t, model.num_joints, 3)
  if noise is None:
    if key is None:
      raise ValueError('sample needs a key or injected noise')
    noise = jax.random.normal(key, (b, steps + 1, *shape))
  elif noise.shape != (b, steps + 1, *shape):
    raise ValueError(
      f'noise must be (B, K + 1, N, T, J, 3) = {(b, steps + 1, *shape)}, got {noise.shape}'
    )
  per_step = {k: v for k, v in c.items() if k != 'start'}

  def one(o, z):
    energy_fn = functools.partial(multi_view_energy, obs=o)

    def step(x, inp):
      cs, zk = inp
      x0 = jax.lax.stop_gradient(model.apply(variables, x, train=False, t=cs['m']))
      g, energies = guide(
        x0,
        energy_fn,
        num_substeps=num_substeps,
        energy_scale=energy_scale,
        independent_samples=independent_samples,
        factor=factor,
        threshold=threshold,
      )
      eps = (cs['sra'] * x - g) / cs['srm1']
      x_next = g * cs['sqrt_abp'] + cs['c_eps'] * eps + cs['sigma'] * zk
      return x_next, (x_next, x0, g, energies)

    _, (xs, before, guided, es) = jax.lax.scan(step, c['start'] * z[0], (per_step, z[1:]))
    return xs, before, guided, es.reshape(-1, num_samples)

  xs, before, guided, es = jax.vmap(one)(obs, noise)
  out = {'samples': guided[:, -1]}
  if return_chain:
    out.update(x=xs, x0_before=before, x0=guided, energy=es)
  return out


# ------------------------------------------------------------------------------- training


def augment(
  key: jax.Array, pose: jax.Array, *, up_axis: int = 2, mirror: tuple[int, ...] | None = None
) -> jax.Array:
  """The training augmentation: a rotation about the vertical axis by one of
  linspace(-pi, pi, 10) and, with probability 1/2, a left/right mirror (x negated, sides
  swapped). One draw per clip.

  Args:
    key: PRNG key.
    pose: (B, T, J, 3) motion.
    up_axis: the vertical axis: 2 for the H36M world frame (z up, the official recipe), 1 for a
      camera frame (y down).
    mirror: joint permutation of the mirror (default: the H36M-17 flip permutation).
  """
  k_rot, k_mir = jax.random.split(key)
  b = pose.shape[0]
  ang = jnp.linspace(-jnp.pi, jnp.pi, 10)[jax.random.randint(k_rot, (b,), 0, 10)]
  c, s = jnp.cos(ang), jnp.sin(ang)
  i, j = [a for a in range(3) if a != up_axis]
  rot = jnp.tile(jnp.eye(3), (b, 1, 1))
  rot = rot.at[:, i, i].set(c).at[:, i, j].set(-s).at[:, j, i].set(s).at[:, j, j].set(c)
  pose = jnp.einsum('bij,btkj->btki', rot, pose)
  mirror = skel.get('h36m17').flip_perm if mirror is None else mirror
  mirrored = pose[..., np.asarray(mirror), :] * jnp.array([-1.0, 1.0, 1.0])
  flip = jax.random.bernoulli(k_mir, 0.5, (b,))
  return jnp.where(flip[:, None, None, None], mirrored, pose)


def centre_pose(pose: jax.Array, root: int = 0) -> jax.Array:
  """`center_pose`: joints relative to the root, the root slot keeps the absolute trajectory."""
  rel = pose - pose[..., root : root + 1, :]
  return rel.at[..., root, :].set(pose[..., root, :])


def loss_fn(model, params, model_state, batch, rng, config: mlc.ConfigDict):
  """MDM x0 loss on the respaced process. Returns (loss, (scalars, model_state)).

  batch: 'pose3d_world' (B, T, J, 3) when present (the recipe's target: world-frame motion),
  else 'pose3d_cam' plus 'pose3d_root' (B, T, 1, 3) (camera-frame motion with its trajectory);
  'valid' (B, T) masks padded frames.
  """
  d = settings(config)
  k_aug, k_t, k_eps, k_drop = jax.random.split(rng, 4)
  if 'pose3d_world' in batch:
    pose, up = batch['pose3d_world'], 2
  else:
    pose, up = batch['pose3d_cam'] + batch.get('pose3d_root', 0.0), 1
  if d['augment']:
    pose = augment(k_aug, pose, up_axis=up)
  x0 = centre_pose(pose)
  s = spaced_schedule(int(d['num_timesteps']), int(d['num_steps']))
  k = jax.random.randint(k_t, x0.shape[:1], 0, int(d['num_steps']))
  ac = jnp.asarray(s['alphas_cumprod'], jnp.float32)[k][:, None, None, None]
  eps = jax.random.normal(k_eps, x0.shape)
  xt = jnp.sqrt(ac) * x0 + jnp.sqrt(1 - ac) * eps
  m = jnp.asarray(s['timestep_map'], jnp.int32)[k]
  variables = {'params': params, **model_state}
  pred = model.apply(variables, xt, train=True, t=m, rngs={'dropout': k_drop})
  valid = batch['valid'].astype(pred.dtype) if 'valid' in batch else jnp.ones(x0.shape[:2])
  # masked_l2: per clip, the sum of squared errors over the clip / (B T J 3), then batch mean.
  per_clip = jnp.sum(jnp.square(pred - x0) * valid[..., None, None], axis=(1, 2, 3))
  loss = per_clip.mean() / (x0.shape[0] * x0.shape[1] * x0.shape[2] * x0.shape[3])
  mse = masked_mean(jnp.square(pred - x0).mean(axis=(2, 3)), valid)
  return loss, ({'loss': loss, 'loss/mse': mse}, model_state)


def nominal_camera(focal: float, batch: int) -> dict[str, jax.Array]:
  """An undistorted pinhole at the origin in normalised screen units (fx = fy = focal,
  c = 0, R = I), one camera per batch row: {name: (B, 1, ...)} for `sample`."""
  k = jnp.array([[focal, 0.0, 0.0], [0.0, focal, 0.0], [0.0, 0.0, 1.0]], jnp.float32)
  one = {
    'intrinsic_matrix': k,
    'rotation_matrix': jnp.eye(3),
    'translation_vector': jnp.zeros((1, 3)),
    'tangential_distortion': jnp.zeros((1, 2)),
    'radial_distortion': jnp.zeros((1, 3)),
  }
  return jax.tree.map(lambda a: jnp.broadcast_to(a, (batch, 1, *a.shape)), one)


def monocular_observation(kp2d: jax.Array, focal: float, depth: float, root: int = 0):
  """A leak-free monocular observation from normalised 2D alone (the engine's `predict`).

  The camera is `nominal_camera(focal)`; the root trajectory is the 2D root back-projected to
  the nominal depth; the weights are the confidence channel when present, else 1.
  kp2d: (B, T, J, C2) -> obs with a leading B (one camera)."""
  uv = kp2d[..., :2]
  z = jnp.full(uv.shape[:2] + (1, 1), depth, uv.dtype)
  root_traj = jnp.concatenate([uv[..., root : root + 1, :] * depth / focal, z], -1)
  w = jnp.broadcast_to(kp2d[..., 2:3], uv.shape) if kp2d.shape[-1] > 2 else jnp.ones_like(uv)
  return {
    'root': root_traj,
    'x2d': uv[:, None],
    'weights': w[:, None],
    'cameras': nominal_camera(focal, kp2d.shape[0]),
  }


def batch_cameras(batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """The engine batch's camera as a propose-style camera in normalised screen units, one per row:
  {name: (B, 1, ...)}; identity extrinsics (the batch is camera-frame). The VideoPose3D distortion
  coefficients are used with propose's distortion formula (the tangential terms differ slightly
  from VideoPose3D's `project_to_2d`)."""
  k = batch['cam_intrinsics'].astype(jnp.float32)  # (B, 9) pixels
  w = batch['res_w'].astype(jnp.float32)
  h = batch['res_h'].astype(jnp.float32)
  fx, fy = k[:, 0] / w * 2, k[:, 1] / w * 2
  cx, cy = k[:, 2] / w * 2 - 1, k[:, 3] / w * 2 - h / w
  zero, one = jnp.zeros_like(fx), jnp.ones_like(fx)
  kt = jnp.stack(
    [
      jnp.stack([fx, zero, zero], -1),
      jnp.stack([zero, fy, zero], -1),
      jnp.stack([cx, cy, one], -1),
    ],
    -2,
  )
  b = k.shape[0]
  cams = {
    'intrinsic_matrix': kt,
    'rotation_matrix': jnp.broadcast_to(jnp.eye(3), (b, 3, 3)),
    'translation_vector': jnp.zeros((b, 1, 3)),
    'radial_distortion': k[:, None, 4:7],
    'tangential_distortion': k[:, None, 7:9],
  }
  return jax.tree.map(lambda a: a[:, None], cams)


def _sample_kwargs(d: Mapping[str, Any]) -> dict[str, Any]:
  return dict(
    energy_scale=float(d['energy_scale']),
    num_samples=int(d['num_samples']),
    num_substeps=int(d['num_substeps']),
    skip_timesteps=int(d['skip_timesteps']),
    num_timesteps=int(d['num_timesteps']),
    num_steps=int(d['num_steps']),
    eta=float(d['eta']),
    independent_samples=bool(d['independent_samples']),
    factor=float(d['lr_factor']),
    threshold=float(d['lr_threshold']),
  )


def eval_metrics(model, variables, batch, config: mlc.ConfigDict) -> dict[str, jax.Array]:
  """Engine hook: the paper's protocol on camera-frame batches, per frame (B, T) in mm.

  The observation is `official_observation` in the batch's camera (identity extrinsics, the
  batch intrinsics): the ground-truth root trajectory is added to the samples, the detected root
  replaced by the projected GT root and the weights come from the GT 2D error (the official
  evaluation's leakage; `config.data.config == 'gt'` gives the GT projection and unit weights).
  Returns min_mpjpe_mm and min_p_mpjpe_mm (the per-window sequence oracle over the N samples,
  repeated on every frame of the window) and, for T > 1, best_mpjve_mm. Calibration needs counts
  accumulated over windows: use `metrics.calibration_coverage` on `sample`'s output.
  """
  d = settings(config)
  root = skel.get(config.data.skeleton).root
  gt_abs = batch['pose3d_cam'] + batch['pose3d_root']
  cams = batch_cameras(batch)
  gt_kp = config.data.config == 'gt'
  obs = jax.vmap(lambda p, x, c: official_observation(p, x, c, gt_keypoints=gt_kp, root=root))(
    gt_abs, batch['kp2d_norm'][:, None, ..., :2], cams
  )
  out = sample(model, variables, obs, jax.random.key(int(d['seed'])), **_sample_kwargs(d))
  samples = out['samples'].at[..., root, :].set(0.0)  # (B, N, T, J, 3), root slot dropped
  scale = 1000.0 * batch.get('scale_2_5d', jnp.ones(gt_abs.shape[:2]))[:, None, :, None, None]
  gt = (batch['pose3d_cam'] - batch['pose3d_cam'][..., root : root + 1, :])[:, None] * scale
  s_mm, gt_mm = samples * scale, gt[:, 0]
  t = gt_abs.shape[1]
  per_frame = lambda v: jnp.broadcast_to(v[:, None], (v.shape[0], t))
  res = {
    'min_mpjpe_mm': per_frame(sampling.min_mpjpe(s_mm, gt_mm)),
    'min_p_mpjpe_mm': per_frame(sampling.min_p_mpjpe(s_mm, gt_mm)),
  }
  if t > 1:
    res['best_mpjve_mm'] = per_frame(sampling.best_sample_mpjve(s_mm, gt_mm))
  return res


def predict(
  model, variables: dict[str, Any], kp2d_norm: jax.Array, config: mlc.ConfigDict
) -> jax.Array:
  """The engine's deterministic output from 2D alone: guided samples under a nominal monocular
  camera (`monocular_observation`: focal `nominal_focal`, root at `nominal_depth` metres), then
  the per-coordinate lower median over the N samples, root-relative (B, T, J, 3).

  Approximate by construction (no cameras or root depth reach `predict`); it assumes a prior
  trained in the camera frame (the engine recipe). The paper's protocol (cameras, GT root,
  minMPJPE, calibration) is `sample` + `official_observation` + `jaxpose.metrics.sampling`."""
  d = settings(config)
  obs = monocular_observation(kp2d_norm, float(d['nominal_focal']), float(d['nominal_depth']))
  out = sample(model, variables, obs, jax.random.key(int(d['seed'])), **_sample_kwargs(d))
  med = sampling.lower_median(out['samples'], axis=1)
  return med - med[..., :1, :]


METHOD = Method(loss_fn=loss_fn, predict=predict, eval_metrics=eval_metrics)
