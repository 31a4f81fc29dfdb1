"""PersPose: perspective encoding (PE), 2.5D joint heads and the official forward with flip test.

Paper: Hao & Li, "PersPose: 3D Human Pose Estimation with Perspective Encoding and Perspective
Rotation", ICCV 2025, arXiv:2508.17239. Official code: github.com/KenAdamsJoseph/PersPose at
1863de7a455700d99280d4ce683efb726e42592b (`src_PersPose/PersPose.py`: `PersPose.inner/forward`);
research/perspose.md §2.2 and §9. Written from the architecture; no code copied.

Registry model `perspose` (INPUT_KIND 'image'), applied as
`model.apply(variables, image, K_crop, pe_valid, train=..., flip=None)`:
  image     (B, H, W, 3) float32 NHWC ImageNet-normalised RGB crop (the PR crop of
            data/perspective_crop.py; 256 x 256 in the paper).
  K_crop    (B, 3, 3) float32 crop intrinsics, pixels (after PR: principal point at the centre).
  pe_valid  (B,) float32 1 for samples with intrinsics, 0 for COCO (their PE map is zeroed).
  flip      optional (B,) bool (training): run those samples mirrored (image flipped, cx -> W - cx)
            and mirror the outputs back; the official code flips the whole batch with p = 0.5
            (`methods.perspose.sample_flip`). At eval (train=False) with `flip_test` the model runs
            the image and its mirror and averages (official flip test).

Forward (J = 25: 24 SMPL joints + the H36M pelvis; stride s = 4):
  PE     rays = (K_crop^-1 [(i + .5) s, (j + .5) s, 1])[:2] on the (H/s, W/s) grid, * pe_valid;
         cam_info = Conv1x1(2 -> 256, no bias)(rays), added by the backbone to its stride-4
         feature (HRNet: after layer1).
  heads  hm = Conv1x1(C -> J)(features); uv = soft-argmax with cell centres (i + .5) W / w;
         depth = 2.2 (sigmoid(Linear(g)) - .5) m, root-relative, joint 0 forced to 0;
         rho0 = 7e-3 exp(3 (sigmoid(Linear(g)) - .5)) m/px (root Z / f);
         ortho_twist = Linear(g) -> (J, 3); beta = Linear(g) -> 11;
         leaf_rot = rot6d_to_rotmat(Linear(g) -> (5, 6)) for joints [22, 23, 10, 11, 15].
  back-projection  f = (fx + fy)/2, density = depth / f + rho0, xy = (uv - c) density,
         xyz = [xy - xy_0, depth], xyz0 = [xy_0, f density_0].

Output dict (batch first):
  uv           (B, J, 2) crop pixels
  depth        (B, J, 1) metres, relative to joint 0
  density      (B, J, 1) mm per pixel (= 1000 Z / f)
  xyz          (B, J, 3) metres, root-relative (joint 0), rotated camera frame
  xyz0         (B, 1, 3) metres, joint 0 in the rotated camera frame
  ortho_twist  (B, J, 3) twist directions (unnormalised), camera frame
  leaf_rot     (B, 5, 3, 3) leaf-joint rotations (official layout (B, 5, 9))
  beta         (B, 11) the network's shape (before the IK's beta-0 search)

Backbones (field `backbone`, built by `BACKBONES[name](model)`; each is called
`backbone(image, cam_info, train=...)` and returns {'features': (B, H/4, W/4, C), 'global_feat':
(B, D)}):
  'hrnet_w48'  the paper's HRNet-W48 with the classification head, from jaxpose/models/hrnet.py
               (`HRNet(**hrnet.VARIANTS['w48_perspose'])`, fields overridable by
               `backbone_kwargs`); imported on use.
  'standin'    the parity fixture's stand-in (perspose__head_pe.npz): Conv k=s=4 (3 -> stem_channels)
               + ReLU, + cam_info, Conv1x1 (-> feat_channels) = features, spatial mean -> Linear
               (-> global_dim) = global_feat. Not a real network; tests only.
Parameter names are the official ones (`hm_layer`, `depth_layer_global`, `rho0_layer`,
`twist_layer`, `shape_layer`, `leaf_rot_layer`, `cam_layer`, `backbone/...`), so `from_torch` is
`convert_state_dict`.

Deviations / not here:
  * SMPL via HybrIK IK (`smpl.ik_w_ortho_twist`: beta-0 grid search, swing IK, twist composition)
    is not part of the module (it needs a body model): `jaxpose.methods.perspose.smpl_fit(body,
    output)` (jaxpose/body/hybrik.py) gives beta, theta, transl; `beta` here is the network's.
  * The training flip is per sample (a (B,) mask) instead of one coin per batch; pass an all-equal
    mask for the official behaviour.
  * Initialisation: cam_layer N(0, 0.01) as official; heads torch-default (the official HRNet
    init and COCO checkpoint belong to the backbone).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.convert.torch_utils import convert_state_dict
from jaxpose.geometry.perspective import pixel_rays, rot6d_to_rotmat
from jaxpose.models.layers.linear import Linear, torch_bias_init, torch_kernel_init

INPUT_KIND = 'image'
RNG_STREAMS = ()

NUM_JOINTS = 25
FLIP_PAIRS = ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (22, 23))
LEAF_JOINTS = (22, 23, 10, 11, 15)
LEAF_FLIP = (1, 0, 3, 2, 4)
NUM_BETAS = 11


def flip_permutation(num_joints: int = NUM_JOINTS) -> np.ndarray:
  """(J,) index array swapping the official L/R pairs."""
  perm = np.arange(num_joints)
  for a, b in FLIP_PAIRS:
    perm[a], perm[b] = b, a
  return perm


VARIANTS = {
  'w48': {'backbone': 'hrnet_w48'},
  'standin': {'backbone': 'standin'},
}
TEST_OVERRIDES = {
  'backbone': 'standin',
  'input_hw': (16, 16),
  'stem_channels': 8,
  'feat_channels': 4,
  'global_dim': 16,
}


class StandInBackbone(nn.Module):
  """The parity fixture's stand-in backbone (module docstring). NHWC."""

  stem_channels: int = 256
  feat_channels: int = 48
  global_dim: int = 2048
  stride: int = 4

  @nn.compact
  def __call__(self, x: jax.Array, cam_info: jax.Array, *, train: bool) -> dict[str, jax.Array]:
    """x (B, H, W, 3), cam_info (B, H/s, W/s, stem_channels) -> features, global_feat."""
    del train
    s = self.stride
    y = nn.relu(
      nn.Conv(
        self.stem_channels,
        (s, s),
        strides=(s, s),
        padding='VALID',
        kernel_init=torch_kernel_init,
        bias_init=torch_bias_init(3 * s * s),
        name='stem',
      )(x)
    )
    y = y + cam_info
    feat = nn.Conv(
      self.feat_channels,
      (1, 1),
      kernel_init=torch_kernel_init,
      bias_init=torch_bias_init(self.stem_channels),
      name='out',
    )(y)
    g = Linear(self.global_dim, name='fc')(feat.mean(axis=(1, 2)))
    return {'features': feat, 'global_feat': g}


def _standin(model: Model) -> nn.Module:
  return StandInBackbone(
    model.stem_channels, model.feat_channels, model.global_dim, model.stride, name='backbone'
  )


def _hrnet_w48(model: Model) -> nn.Module:
  try:
    hrnet = importlib.import_module('jaxpose.models.hrnet')
  except ImportError as e:
    raise ValueError(
      "perspose backbone 'hrnet_w48' needs jaxpose/models/hrnet.py (HRNet with the "
      "classification head, variant 'w48_perspose'); use backbone='standin' for tests"
    ) from e
  kwargs = {**hrnet.VARIANTS['w48_perspose'], **dict(model.backbone_kwargs)}
  return hrnet.HRNet(**kwargs, name='backbone')


BACKBONES: dict[str, Callable[[Any], nn.Module]] = {
  'hrnet_w48': _hrnet_w48,
  'standin': _standin,
}


class Model(nn.Module):
  """PersPose network (module docstring).

  Attributes:
    backbone: key of BACKBONES ('hrnet_w48' in the paper).
    backbone_kwargs: extra backbone fields as (name, value) pairs (HRNet).
    stem_channels: channels of the stride-4 feature the PE is added to (256 = HRNet layer1).
    feat_channels, global_dim: stand-in backbone widths (HRNet-W48: 48 and 2048).
    stride: backbone stride of the PE grid and of the heatmaps (4).
    num_joints: 25 (the official layout; flip pairs and leaf joints assume it).
    flip_test: average with the mirrored image at eval (official: on).
    input_hw: (H, W) of `example_inputs` (256 x 256 in the paper).
  """

  backbone: str = 'hrnet_w48'
  backbone_kwargs: tuple[tuple[str, Any], ...] = ()
  stem_channels: int = 256
  feat_channels: int = 48
  global_dim: int = 2048
  stride: int = 4
  num_joints: int = NUM_JOINTS
  flip_test: bool = True
  input_hw: tuple[int, int] = (256, 256)

  def _check(self) -> None:
    if self.backbone not in BACKBONES:
      raise ValueError(
        f'perspose: unknown backbone {self.backbone!r}; known: {", ".join(BACKBONES)}'
      )
    if self.num_joints != NUM_JOINTS:
      raise ValueError(f'perspose: num_joints must be {NUM_JOINTS} (official layout)')

  def _inner(self, image: jax.Array, K: jax.Array, pe_valid: jax.Array, train: bool) -> dict:
    """One pass without flipping: raw head outputs (official `inner` with flip=False)."""
    b, h, w, _ = image.shape
    s, j = self.stride, self.num_joints
    rays = pixel_rays(K, (h // s, w // s), s) * pe_valid[:, None, None, None]
    cam_info = nn.Conv(
      self.stem_channels,
      (1, 1),
      use_bias=False,
      kernel_init=nn.initializers.normal(0.01),
      name='cam_layer',
    )(rays)
    feats = BACKBONES[self.backbone](self)(image, cam_info, train=train)
    f, g = feats['features'], feats['global_feat']
    hm = nn.Conv(
      j,
      (1, 1),
      kernel_init=torch_kernel_init,
      bias_init=torch_bias_init(f.shape[-1]),
      name='hm_layer',
    )(f)  # (B, h', w', J)
    gh, gw = hm.shape[1:3]
    prob = jax.nn.softmax(hm.reshape(b, gh * gw, j), axis=1).reshape(hm.shape)
    u = (jnp.arange(gw, dtype=hm.dtype) + 0.5) * w / gw
    v = (jnp.arange(gh, dtype=hm.dtype) + 0.5) * h / gh
    uv = jnp.stack([jnp.einsum('bhwj,w->bj', prob, u), jnp.einsum('bhwj,h->bj', prob, v)], -1)
    depth = jax.nn.sigmoid(Linear(j, name='depth_layer_global')(g))[..., None]
    depth = (1.1 * (depth - 0.5) * 2).at[:, 0].set(0.0)
    rho0 = jax.nn.sigmoid(Linear(1, name='rho0_layer')(g))[..., None]
    rho0 = 1e-3 * 7 * jnp.exp((rho0 - 0.5) * 2 * 1.5)  # (B, 1, 1)
    leaf6d = Linear(6 * len(LEAF_JOINTS), name='leaf_rot_layer')(g)
    return {
      'uv': uv,
      'depth': depth,
      'rho0': rho0,
      'f': ((K[:, 0, 0] + K[:, 1, 1]) / 2)[:, None, None],
      'ortho_twist': Linear(3 * j, name='twist_layer')(g).reshape(b, j, 3),
      'leaf_rot': rot6d_to_rotmat(leaf6d.reshape(b, len(LEAF_JOINTS), 6)),
      'beta': Linear(NUM_BETAS, name='shape_layer')(g),
    }

  def _unflip(self, o: dict, width: int) -> dict:
    perm = flip_permutation(self.num_joints)
    sign = jnp.array([-1.0, 1.0, 1.0], o['leaf_rot'].dtype)
    uv = o['uv'][:, perm]
    twist = o['ortho_twist'][:, perm]
    leaf = sign[:, None] * o['leaf_rot'] * sign  # F R F with F = diag(-1, 1, 1)
    return {
      **o,
      'uv': jnp.concatenate([width - uv[..., :1], uv[..., 1:]], -1),
      'depth': o['depth'][:, perm],
      'ortho_twist': twist * sign,
      'leaf_rot': leaf[:, np.asarray(LEAF_FLIP)],
    }

  @nn.compact
  def __call__(
    self,
    image: jax.Array,
    K_crop: jax.Array,
    pe_valid: jax.Array,
    *,
    train: bool,
    flip: jax.Array | None = None,
  ) -> dict[str, jax.Array]:
    """Official forward (module docstring); shapes there."""
    self._check()
    image = jnp.asarray(image, jnp.float32)
    K = jnp.asarray(K_crop, jnp.float32)
    pe_valid = jnp.asarray(pe_valid, jnp.float32)
    w = image.shape[2]
    k_flip = K.at[:, 0, 2].set(w - K[:, 0, 2])
    if not train and self.flip_test:
      b = image.shape[0]
      both = self._inner(
        jnp.concatenate([image, image[:, :, ::-1]]),
        jnp.concatenate([K, k_flip]),
        jnp.concatenate([pe_valid, pe_valid]),
        train,
      )
      o = jax.tree.map(lambda a: a[:b], both)
      of = self._unflip(jax.tree.map(lambda a: a[b:], both), w)
      o = {k: v if k == 'leaf_rot' else (v + of[k]) / 2 for k, v in o.items()}
    elif flip is not None:
      flip = jnp.asarray(flip, bool)
      img_in = jnp.where(flip[:, None, None, None], image[:, :, ::-1], image)
      o = self._inner(img_in, jnp.where(flip[:, None, None], k_flip, K), pe_valid, train)
      of = self._unflip(o, w)
      o = jax.tree.map(
        lambda a, c: jnp.where(flip.reshape((-1,) + (1,) * (a.ndim - 1)), c, a), o, of
      )
    else:
      o = self._inner(image, K, pe_valid, train)
    density = o['depth'] / o['f'] + o['rho0']
    xy = (o['uv'] - K[:, None, :2, 2]) * density
    return {
      'uv': o['uv'],
      'depth': o['depth'],
      'density': 1000 * density,
      'xyz': jnp.concatenate([xy - xy[:, :1], o['depth']], -1),
      'xyz0': jnp.concatenate([xy[:, :1], o['f'] * density[:, :1]], -1),
      'ortho_twist': o['ortho_twist'],
      'leaf_rot': o['leaf_rot'],
      'beta': o['beta'],
    }


def input_shape(model: Model) -> tuple[int, int, int]:
  """(H, W, 3) of the example image."""
  return (*model.input_hw, 3)


def example_inputs(model: Model, batch: int = 1) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(image zeros (B, H, W, 3), K_crop (B, 3, 3) f = H, c = (W/2, H/2), pe_valid ones (B,))."""
  h, w = model.input_hw
  k = jnp.array([[h, 0.0, w / 2], [0.0, h, h / 2], [0.0, 0.0, 1.0]], jnp.float32)
  return (
    jnp.zeros((batch, h, w, 3), jnp.float32),
    jnp.broadcast_to(k, (batch, 3, 3)),
    jnp.ones((batch,), jnp.float32),
  )


def from_torch(
  state_dict: Mapping[str, np.ndarray], **official_kwargs: Any
) -> tuple[Model, dict[str, Any]]:
  """Official PersPose state dict -> (Model, variables).

  The backbone is read off the keys: `backbone.conv1.weight` (HRNet, delegated to
  `jaxpose.models.hrnet.infer_config`) or `backbone.stem.weight` (the fixture's stand-in). SMPL
  buffers (`smpl.*`) are ignored.

  Args:
    state_dict: official keys -> arrays (`module.` prefixes already stripped).
    **official_kwargs: Model fields to override (e.g. input_hw, flip_test).

  Returns:
    (module, variables) with `module.apply(variables, image, K_crop, pe_valid, train=False)` equal
    to the official eval forward.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items() if not k.startswith('smpl.')}
  if 'cam_layer.weight' not in sd:
    raise ValueError(
      f'perspose.from_torch: key cam_layer.weight missing; keys {sorted(sd)[:8]} ...'
    )
  cam = sd['cam_layer.weight']
  kw: dict[str, Any] = {'stem_channels': int(cam.shape[0])}
  if 'backbone.stem.weight' in sd:
    stem = sd['backbone.stem.weight']
    kw.update(
      backbone='standin',
      stride=int(stem.shape[-1]),
      feat_channels=int(sd['backbone.out.weight'].shape[0]),
      global_dim=int(sd['backbone.fc.weight'].shape[0]),
    )
  elif 'backbone.conv1.weight' in sd:
    hrnet = importlib.import_module('jaxpose.models.hrnet')
    cfg = hrnet.infer_config(sd, prefix='backbone.')
    kw.update(
      backbone='hrnet_w48',
      backbone_kwargs=tuple(sorted(cfg.items())),
      feat_channels=int(sd['hm_layer.weight'].shape[1]),
      global_dim=int(sd['depth_layer_global.weight'].shape[1]),
    )
  else:
    raise ValueError('perspose.from_torch: no backbone.stem.weight or backbone.conv1.weight key')
  kw.update(official_kwargs)
  module = Model(**kw)
  xs = example_inputs(module, 1)
  ref = jax.eval_shape(lambda: module.init(jax.random.key(0), *xs, train=False))
  return module, convert_state_dict(sd, ref)
