"""DSR's body regressor: ResNet-50 + the SPIN/HMR iterative regressor of SMPL pose, shape and camera.

Paper: Dwivedi, Athanasiou, Kocabas, Black, "Learning to Regress Bodies from Images using
Differentiable Semantic Rendering", ICCV 2021, arXiv:2110.03480. Official code:
github.com/saidwivedi/DSR at 7d55d173192a44ec567864befd2fb20e993098eb (`dsr/models/hmr.py`,
`dsr/models/head/hmr_head.py`, `smpl_head.py`); research/dsr.md §2. The regressor is SPIN's
(Kolotouros et al., ICCV 2019, arXiv:1909.12828), itself HMR's (Kanazawa et al., CVPR 2018,
arXiv:1712.06584) iterative error feedback. Written from the spec; no code copied (the official
licence is non-commercial; only facts carried over).

Architecture:
  backbone  torchvision ResNet-50 without avgpool/fc (`resnet.ResNet`): layer4 (B, 7, 7, 2048).
  head      xf = mean over the 7x7 grid (AvgPool2d(7, stride 1)) -> (B, 2048); pose6d, betas, cam
            start at the SMPL mean parameters (the `buffers` collection: init_pose (144,),
            init_shape (10,), init_cam (3,)); n_iter = 3 times, with shared weights:
              h = drop2(fc2(drop1(fc1([xf, pose6d, betas, cam]))))     (no nonlinearity)
              pose6d += decpose(h); betas += decshape(h); cam += deccam(h)
            fc1: 2048 + 157 -> 1024, fc2: 1024 -> 1024, Dropout(0.5) after each.
  rotations pose6d (B, 24, 6) -> (B, 24, 3, 3) by Gram-Schmidt on the two columns of each (3, 2)
            reshape (`geometry.rotation.rot6d_to_matrix`).
  camera    cam_weak (s, tx, ty) -> cam_t = (tx, ty, 2 * 5000 / (224 s + 1e-9)) metres
            (`geometry.spin.weak_to_perspective`).

Registry model `dsr` (INPUT_KIND 'image'):
  input   x (B, 224, 224, 3) float32 NHWC, ImageNet-normalised RGB crop.
  output  dict (batch axis first):
            'body_rotmat' (B, 24, 3, 3) float32 local SMPL joint rotations (root first; official
                          'pred_pose'), acting on column vectors.
            'body_betas'  (B, 10) float32 SMPL shape coefficients ('pred_shape').
            'pose_6d'     (B, 144) float32 the raw 6D pose before Gram-Schmidt.
            'cam_weak'    (B, 3) float32 (s, tx, ty) weak-perspective crop camera ('pred_cam').
            'cam_t'       (B, 3) float32 metres, perspective camera translation ('pred_cam_t') for
                          focal 5000 px and principal point at the crop centre.
          The SMPL body (vertices, the 49 joints and their projection, `geometry.spin
          .project_points`) is computed by the method from these with `jaxpose.body`: the body
          model holds no trainable parameters.
  Variant 'r50' (default): 26,977,501 parameters = backbone 23,508,032 + head 3,469,469, equal to
  the official `HMR(backbone='resnet50')` network. `sum(p.numel() for p in HMR().parameters())`
  is 26,977,583: the extra 82 are smplx's default `betas` (10), `global_orient` (3) and
  `body_pose` (69) parameters of the SMPL layer, unused in the forward pass (the head's rotations
  and betas are passed explicitly) and never updated; they are not ported.

SMPL mean parameters. The real `smpl_mean_params.npz` (SPIN's, SMPL-derived, user-supplied) loads
with `load_smpl_mean_params(path)` and goes into the variables with `with_mean_params`. Without it
the buffers hold `synthetic_mean_params()`: identity rotations for the 23 body joints, a root
rotated by pi about x (a y-up body upright in the y-down camera frame), zero betas and cam
(0.9, 0, 0) (SPIN's mean scale), documented and deterministic.

Numerics: torch BatchNorm semantics in the backbone; torch Linear initialisation for fc1/fc2,
xavier-uniform with gain 0.01 for decpose/decshape/deccam (their biases torch's default). The
dropout masks are drawn from the 'dropout' stream, fresh at every use (two layers, three
iterations).

`from_torch` accepts the official module's keys (`backbone.*`, `head.*`, `smpl.*` ignored), the
Lightning checkpoint's (`model.` prefix) and SPIN-format flat keys (conv1 ... layer4, fc1 ...
deccam, init_* optional: pass `mean_params` when absent); `head_from_torch` the head alone.

Deviations: the average pool is a global mean, which equals AvgPool2d(7, stride 1) on the 7x7
layer4 of a 224 input and also works for other sizes (where the official code fails); `width`
exists only for toy tests; the hrnet/mobilenet backbones of the official repo are not ported (DSR's
configs use resnet50).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert.torch_utils import convert_state_dict
from jaxpose.geometry import rotation, spin
from jaxpose.models import resnet
from jaxpose.models.layers.linear import Linear

INPUT_KIND = 'image'
RNG_STREAMS = ('dropout',)

NUM_JOINTS = 24
NPOSE = 6 * NUM_JOINTS
NUM_BETAS = 10

VARIANTS = {'r50': {'depth': 50}}
TEST_OVERRIDES = {'depth': 18, 'width': 8, 'hidden': 16, 'img_res': 32}
PAPER = {
  'r50': {
    'params': 26_977_501,
    'reported_params': 'official HMR(resnet50): 26,977,501 network + 82 unused smplx defaults',
  },
}

# The official `backbone` argument -> ResNet depth (dsr/models/backbone/resnet.py).
BACKBONES = {'resnet18': 18, 'resnet34': 34, 'resnet50': 50, 'resnet101': 101, 'resnet152': 152}
HEAD_MODULES = ('fc1', 'fc2', 'decpose', 'decshape', 'deccam')
BUFFERS = ('init_pose', 'init_shape', 'init_cam')

_dec_init = nn.initializers.variance_scaling(0.01**2, 'fan_avg', 'uniform')  # xavier gain 0.01


# ----------------------------------------------------------------------------------------------
# SMPL mean parameters


def synthetic_mean_params() -> dict[str, np.ndarray]:
  """The documented stand-in for `smpl_mean_params.npz` (see the module docstring).

  Returns:
    {'pose': (144,) float32 6D rotations (24 joints x the (3, 2) first two columns, row-major),
     'shape': (10,) float32, 'cam': (3,) float32 (s, tx, ty)}.
  """
  pose = np.tile(np.array([1, 0, 0, 1, 0, 0], np.float32), NUM_JOINTS)
  pose[:6] = (1, 0, 0, -1, 0, 0)  # root: rotation by pi about x, columns (1,0,0), (0,-1,0)
  return {
    'pose': pose,
    'shape': np.zeros(NUM_BETAS, np.float32),
    'cam': np.array([0.9, 0.0, 0.0], np.float32),
  }


def load_smpl_mean_params(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads SPIN's `smpl_mean_params.npz` (keys pose (144,), shape (10,), cam (3,)) as float32.

  Raises:
    ValueError: naming the file, the key, the expected and the actual shape.
  """
  with np.load(path, allow_pickle=False) as z:
    out = {}
    for key, n in (('pose', NPOSE), ('shape', NUM_BETAS), ('cam', 3)):
      if key not in z.files:
        raise ValueError(f'{path}: key {key!r} missing; found {sorted(z.files)}')
      v = np.asarray(z[key], np.float32).reshape(-1)
      if v.shape != (n,):
        raise ValueError(f'{path}: {key!r} has shape {z[key].shape}, expected ({n},)')
      out[key] = v
  return out


def mean_param_buffers(mean: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """{'pose', 'shape', 'cam'} -> the head's buffers {'init_pose' (144,), 'init_shape' (10,),
  'init_cam' (3,)} float32."""
  return {
    'init_pose': np.asarray(mean['pose'], np.float32).reshape(NPOSE),
    'init_shape': np.asarray(mean['shape'], np.float32).reshape(NUM_BETAS),
    'init_cam': np.asarray(mean['cam'], np.float32).reshape(3),
  }


def with_mean_params(
  variables: Mapping[str, Any], mean: Mapping[str, np.ndarray], *, head: str | None = 'head'
) -> dict[str, Any]:
  """Returns `variables` with the head's mean-parameter buffers replaced by `mean`.

  Args:
    variables: a `Model`'s variables (buffers under 'buffers'/'head'), or an `HMRHead`'s
      (`head=None`: buffers directly under 'buffers').
    mean: {'pose', 'shape', 'cam'} as `load_smpl_mean_params` returns.
    head: name of the head submodule, None for a bare head.
  """
  buf = {k: jnp.asarray(v) for k, v in mean_param_buffers(mean).items()}
  return {**variables, 'buffers': {head: buf} if head else buf}


# ----------------------------------------------------------------------------------------------
# modules


class HMRHead(nn.Module):
  """SPIN's iterative regressor (the official `hmr_head`), torch names.

  Attributes:
    hidden: width of fc1 and fc2 (1024).
    n_iter: refinement iterations (3), sharing weights.
    drop_rate: dropout after fc1 and after fc2 (0.5).
  """

  hidden: int = 1024
  n_iter: int = 3
  drop_rate: float = 0.5

  @nn.compact
  def __call__(self, features: jax.Array, *, train: bool) -> dict[str, jax.Array]:
    """Regresses SMPL rotations, betas and the weak-perspective camera.

    Args:
      features: (B, h, w, C) backbone features (7x7 for a 224 crop) or pooled (B, C).
      train: dropout on (needs the 'dropout' RNG) when True.

    Returns:
      {'body_rotmat' (B, 24, 3, 3), 'body_betas' (B, 10), 'pose_6d' (B, 144), 'cam_weak' (B, 3)}.
    """
    mean = synthetic_mean_params()
    init_pose = self.variable('buffers', 'init_pose', lambda: jnp.asarray(mean['pose']))
    init_shape = self.variable('buffers', 'init_shape', lambda: jnp.asarray(mean['shape']))
    init_cam = self.variable('buffers', 'init_cam', lambda: jnp.asarray(mean['cam']))
    xf = features if features.ndim == 2 else jnp.mean(features, axis=(1, 2))
    b = xf.shape[0]
    pose = jnp.broadcast_to(init_pose.value, (b, NPOSE))
    betas = jnp.broadcast_to(init_shape.value, (b, NUM_BETAS))
    cam = jnp.broadcast_to(init_cam.value, (b, 3))
    fc1, fc2 = Linear(self.hidden, name='fc1'), Linear(self.hidden, name='fc2')
    drop1 = nn.Dropout(self.drop_rate, deterministic=not train, name='drop1')
    drop2 = nn.Dropout(self.drop_rate, deterministic=not train, name='drop2')
    decpose = Linear(NPOSE, kernel_init=_dec_init, name='decpose')
    decshape = Linear(NUM_BETAS, kernel_init=_dec_init, name='decshape')
    deccam = Linear(3, kernel_init=_dec_init, name='deccam')
    for _ in range(self.n_iter):
      h = drop2(fc2(drop1(fc1(jnp.concatenate([xf, pose, betas, cam], axis=-1)))))
      pose = decpose(h) + pose
      betas = decshape(h) + betas
      cam = deccam(h) + cam
    rotmat = rotation.rot6d_to_matrix(pose.reshape(b, NUM_JOINTS, 6))
    return {'body_rotmat': rotmat, 'body_betas': betas, 'pose_6d': pose, 'cam_weak': cam}


class Model(nn.Module):
  """ResNet backbone + HMR head + the weak-to-perspective camera (the official `HMR`, SMPL aside).

  Attributes:
    depth: ResNet depth (50; the official `backbone='resnet50'`).
    width: ResNet stem width (64; smaller only in tests).
    hidden: head width (1024).
    n_iter: head iterations (3).
    drop_rate: head dropout (0.5).
    img_res: side of the square input crop and of the camera model, px (224).
    focal_length: px, of the perspective camera (5000).
  """

  depth: int = 50
  width: int = 64
  hidden: int = 1024
  n_iter: int = 3
  drop_rate: float = 0.5
  img_res: int = 224
  focal_length: float = spin.FOCAL_LENGTH

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> dict[str, jax.Array]:
    """x: (B, H, W, 3) ImageNet-normalised crop -> the output dict of the module docstring."""
    feats = resnet.ResNet(self.depth, self.width, name='backbone')(x, train=train)
    out = HMRHead(self.hidden, self.n_iter, self.drop_rate, name='head')(feats, train=train)
    out['cam_t'] = spin.weak_to_perspective(out['cam_weak'], self.focal_length, self.img_res)
    return out


def input_shape(model: Model) -> tuple[int, int, int]:
  """(H, W, 3) of the example input."""
  return (model.img_res, model.img_res, 3)


def example_inputs(model: Model, batch: int = 1) -> tuple[jax.Array]:
  """One zero image batch (batch, img_res, img_res, 3)."""
  return (jnp.zeros((batch, *input_shape(model)), jnp.float32),)


# ----------------------------------------------------------------------------------------------
# torch import


def _head_variables(
  sd: Mapping[str, np.ndarray], head: HMRHead, in_features: int, mean: Mapping[str, Any] | None
) -> dict[str, Any]:
  """Head keys (fc1 ... deccam, optional init_*) without prefix -> {'params', 'buffers'}."""
  ref = jax.eval_shape(
    lambda: head.init(jax.random.key(0), jnp.zeros((1, in_features)), train=False)
  )
  params = convert_state_dict(
    {k: v for k, v in sd.items() if k.split('.')[0] in HEAD_MODULES}, {'params': ref['params']}
  )['params']
  have = [k for k in BUFFERS if k in sd]
  if have and len(have) != len(BUFFERS):
    raise ValueError(f'state dict has {have} but not all of {BUFFERS}')
  if have:
    buffers = {}
    for k in BUFFERS:
      want = tuple(ref['buffers'][k].shape)
      value = np.asarray(sd[k], np.float32)
      if value.size != int(np.prod(want)):  # (1, n) official buffers or flat (n,)
        raise ValueError(f'state dict key {k!r} has shape {value.shape}, expected {want} or (1, n)')
      buffers[k] = value.reshape(want)
  elif mean is not None:
    buffers = mean_param_buffers(mean)
  else:
    raise ValueError(
      f'state dict has no {BUFFERS} (a SPIN-format checkpoint): pass mean_params='
      'load_smpl_mean_params(path_to_smpl_mean_params.npz)'
    )
  return {'params': params, 'buffers': buffers}


def head_from_torch(
  state_dict: Mapping[str, Any],
  *,
  n_iter: int = 3,
  mean_params: Mapping[str, Any] | None = None,
) -> tuple[HMRHead, dict[str, Any]]:
  """The official `hmr_head` state dict (fc1 ... deccam, init_pose/init_shape/init_cam) ->
  (HMRHead, variables); widths are read from the weights.

  Args:
    state_dict: torch key -> array, keys without prefix.
    n_iter: the forward's `n_iter` (3).
    mean_params: {'pose', 'shape', 'cam'} when the state dict has no init_* buffers.

  Returns:
    (head, variables): `head.apply(variables, features (B, h, w, C), train=False)`.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items()}
  if 'fc1.weight' not in sd:
    raise ValueError(f'no HMR head: key fc1.weight missing; keys {sorted(sd)[:10]} ...')
  hidden, fan_in = sd['fc1.weight'].shape
  in_features = int(fan_in) - NPOSE - NUM_BETAS - 3
  if in_features < 1:
    raise ValueError(
      f'state dict key fc1.weight has shape {sd["fc1.weight"].shape}: its input width must be '
      f'features + {NPOSE} + {NUM_BETAS} + 3 (pose6d, betas, cam), expected > {fan_in - in_features}'
    )
  head = HMRHead(hidden=int(hidden), n_iter=n_iter)
  return head, _head_variables(sd, head, in_features, mean_params)


def _split_official(state_dict: Mapping[str, Any]) -> tuple[dict, dict]:
  """Any official layout -> (backbone keys, head keys), both without prefix."""
  sd = {k: np.asarray(v) for k, v in state_dict.items()}
  if all(k.startswith('model.') for k in sd if not k.startswith('loss_fn.')):
    sd = {k[len('model.') :]: v for k, v in sd.items() if k.startswith('model.')}
  sd = {k: v for k, v in sd.items() if not k.startswith('smpl.')}
  if any(k.startswith('backbone.') for k in sd):
    bb = {k[len('backbone.') :]: v for k, v in sd.items() if k.startswith('backbone.')}
    hd = {k[len('head.') :]: v for k, v in sd.items() if k.startswith('head.')}
    rest = [k for k in sd if not k.startswith(('backbone.', 'head.'))]
  else:  # SPIN-format flat keys
    bb = {k: v for k, v in sd.items() if k.split('.')[0] in ('conv1', 'bn1', *resnet.STAGES)}
    hd = {k: v for k, v in sd.items() if k.split('.')[0] in (*HEAD_MODULES, *BUFFERS)}
    rest = [k for k in sd if k not in bb and k not in hd]
  if rest:
    raise ValueError(f'unexpected keys in the DSR state dict: {sorted(rest)[:20]}')
  return bb, hd


def from_torch(
  state_dict: Mapping[str, Any],
  *,
  backbone: str = 'resnet50',
  img_res: int = 224,
  pretrained: str | None = None,
  mean_params: Mapping[str, Any] | None = None,
) -> tuple[Model, dict[str, Any]]:
  """Official DSR/SPIN weights -> (Model, variables).

  Args:
    state_dict: the official `HMR` state dict (backbone.*, head.*, smpl.* ignored), a DSR
      Lightning checkpoint's (model.backbone.*, model.head.*) or a SPIN-format flat one.
    backbone: official argument ('resnet50'; resnet18/34/101/152 also convert); checked against
      the weights.
    img_res: official argument, the crop side (224).
    pretrained: official argument (a checkpoint path the torch constructor loads); ignored here:
      the weights are `state_dict`.
    mean_params: {'pose', 'shape', 'cam'} (`load_smpl_mean_params`) for state dicts without the
      init_* buffers.

  Returns:
    (model, variables) with `model.apply(variables, x, train=False)` = the official network in
    eval mode.
  """
  del pretrained
  if backbone not in BACKBONES:
    raise ValueError(f'backbone {backbone!r} is not ported; one of {sorted(BACKBONES)}')
  bb_sd, head_sd = _split_official(state_dict)
  cfg = resnet.infer_config(bb_sd)
  if cfg['depth'] != BACKBONES[backbone]:
    raise ValueError(f'backbone={backbone!r} but the weights are a ResNet-{cfg["depth"]}')
  if 'fc1.weight' not in head_sd:
    raise ValueError('no HMR head in the state dict: key (head.)fc1.weight missing')
  hidden = int(head_sd['fc1.weight'].shape[0])
  model = Model(depth=cfg['depth'], width=cfg['width'], hidden=hidden, img_res=img_res)
  bb_mod = resnet.ResNet(model.depth, model.width)
  bb = resnet.backbone_variables(bb_sd, bb_mod)
  head = _head_variables(head_sd, HMRHead(model.hidden), bb_mod.out_channels, mean_params)
  variables = {
    'params': {'backbone': bb['params'], 'head': head['params']},
    'batch_stats': {'backbone': bb['batch_stats']},
    'buffers': {'head': head['buffers']},
  }
  return model, variables
