"""Variant parity fixtures: the public fixtures' layout with other settings, from the official code.

The parity tests must build everything from a fixture's meta and weights (DESIGN.md "Parity"). This
script makes fixtures of the same layout as `pmce__pose_stream`, `pmce__coevo_decoder`,
`pmce__full`, `dsr__hmr_head`, `epipolarpose__integral_head` and `perspose__head_pe` with OTHER
settings, by running the OFFICIAL code (read at run time
from checkouts named by environment variables; nothing official is copied into this repository)
with small random weights, as the public fixtures were made (their meta notes):

  pmce__pose_stream_v1        GraphormerNet(T=8, J=5, C=16, depth=2, num_heads=4)
                              (public: 16, 17, 32, 3, 8)
  pmce__coevo_decoder_v1      stand-in Pose2Mesh, cfg.DATASET.seqlen 8, J 5, 12 / 20 vertices,
                              features 24, GRU hidden 8, d 8 (public: 16, 17, 30 / 64, 32, 16, 16)
  pmce__full_v1               PMCE.forward on a pose stream and a decoder of those sizes
  dsr__hmr_head_v1            hmr_head, features 24 ch, hidden 32, batch 3, n_iter=2, img_res 256
                              (public: 48, 64, 2, 3, 224)
  epipolarpose__integral_head_v1  _make_deconv_layer(2 layers, 12 filters, k=3) + 1x1 conv, J=5,
                              D=8, features (3, 24, 2, 2), get_joint_location_result at 192 px
                              (public: k=4, J=3, D=16, 256 px)
  perspose__head_pe_v1        PersPose forward (flip test) with the public stand-in backbone on a
                              non-square (3, 3, 64, 96) batch, the 2nd sample COCO (public: 2 x 128^2)

Usage:
  PMCE_SRC=/tmp/pmce DSR_SRC=/tmp/dsr EPIPOLARPOSE_SRC=/tmp/epipolarpose PERSPOSE_SRC=/tmp/pp \
    python experiments/fixture_variants/run.py --out /tmp/fixture_variants \
    --check ../shared/fixtures/parity
  JAXPOSE_PARITY_DIR=/tmp/fixture_variants pytest tests/parity/test_pmce_parity.py ...

Needs torch, einops, scipy and timm (timm imports torchvision at import time; when torchvision is
absent a stub from `_tvstub.py` stands in: none of the layers used here touch it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import sys
import tempfile
import types

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent


def _src(var: str) -> pathlib.Path:
  path = os.environ.get(var)
  if not path or not pathlib.Path(path).is_dir():
    raise SystemExit(f'set {var} to a checkout of the official repository (see the docstring)')
  return pathlib.Path(path)


def _load(name: str, path: pathlib.Path) -> types.ModuleType:
  spec = importlib.util.spec_from_file_location(name, path)
  mod = importlib.util.module_from_spec(spec)
  sys.modules[name] = mod
  spec.loader.exec_module(mod)
  return mod


def _stub(name: str, **attrs) -> types.ModuleType:
  mod = types.ModuleType(name)
  mod.__path__ = []
  mod.__dict__.update(attrs)
  sys.modules[name] = mod
  return mod


def _perturb(module: torch.nn.Module, seed: int, std: float = 0.02) -> None:
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for t in list(module.parameters()) + list(module.buffers()):
      if t.dtype.is_floating_point:
        t.add_(torch.randn(t.shape, generator=g) * std)


def _state(module: torch.nn.Module) -> dict[str, np.ndarray]:
  return {f'param/{k}': v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _save(out: pathlib.Path, name: str, arrays: dict, meta: dict) -> None:
  meta = {**meta, 'torch': torch.__version__, 'numpy': np.__version__, 'variant_of': name}
  path = out / name
  np.savez(path, meta=json.dumps(meta, sort_keys=True), **arrays)
  print(f'wrote {path} ({len(arrays)} arrays)')


def _pmce_module() -> types.ModuleType:
  src = _src('PMCE_SRC')
  try:
    import torchvision  # noqa: F401
  except ImportError:
    sys.path.insert(0, str(HERE))
    import _tvstub  # noqa: F401
  cfg = types.SimpleNamespace(
    DATASET=types.SimpleNamespace(seqlen=8), MODEL=types.SimpleNamespace(posenet_path='')
  )
  _stub('core')
  _stub('core.config', cfg=cfg)
  _stub('funcs_utils', load_checkpoint=None)
  return _load('official_pmce_pose_estimation', src / 'lib/models/PoseEstimation.py')


def _pmce_decoder_module(seqlen: int, dim: int) -> types.ModuleType:
  """The official CoevoDecoder.py with its config (seqlen, joint/vertex widths) stubbed."""
  _pmce_module()  # timm (or its torchvision stub), core.config
  cfg = sys.modules['core.config'].cfg
  cfg.DATASET.seqlen, cfg.DATASET.BASE_DATA_DIR = seqlen, ''
  cfg.MODEL.joint_dim = cfg.MODEL.vertx_dim = dim
  src = _src('PMCE_SRC')
  _load('graph_utils', src / 'lib/graph_utils.py')
  _stub('models')
  _stub('models.backbones')
  _stub('models.backbones.mesh', Mesh=None)
  return _load('official_pmce_coevo_decoder', src / 'lib/models/CoevoDecoder.py')


def _pmce_decoder(cd, joints_template, init_vertices, feat, gru_hidden, out_vertices):
  """A stand-in `Pose2Mesh` as the public fixture's (its __init__ needs CUDA and the SMPL files):
  the official blocks and forward, sizes reduced, AdaLN gamma/beta Linear(2 * gru_hidden -> C)."""
  num_joints, num_vertices = len(joints_template), len(init_vertices)
  m = cd.Pose2Mesh.__new__(cd.Pose2Mesh)
  torch.nn.Module.__init__(m)
  m.register_buffer('init_vertices', torch.as_tensor(init_vertices, dtype=torch.float32))
  m.num_verts = num_vertices
  relation, m.jv_sets = cd.build_verts_joints_relation(joints_template, init_vertices)
  m.vj_relation = relation.astype(np.int64)
  dim = cd.cfg.MODEL.joint_dim
  for k in (1, 2, 3):
    setattr(m, f'coevoblock{k}', cd.CoevoBlock(num_joints, num_vertices, dim, dim))
  m.upsample_conv = torch.nn.Conv1d(num_vertices, out_vertices, kernel_size=3, padding=1)
  m.gru_cur = torch.nn.GRU(feat, gru_hidden, bidirectional=True, num_layers=2)
  for k in (1, 2, 3):
    setattr(m, f'linear_cur{k}', torch.nn.Linear(2 * gru_hidden, out_vertices))
  for norm in [x for x in m.modules() if isinstance(x, cd.AdaLayerNorm)]:
    c = norm.mlp_gamma.out_features
    norm.mlp_gamma = torch.nn.Linear(2 * gru_hidden, c)
    norm.mlp_beta = torch.nn.Linear(2 * gru_hidden, c)
  return m.eval()


def _pmce_decoder_run(cd, m, joints, img_feats) -> dict:
  with torch.no_grad():
    y, _ = m.gru_cur(img_feats.permute(1, 0, 2))
    joints3, verts = m(joints, img_feats)
  return {
    'output/joints3': joints3.numpy(),
    'output/verts': verts.numpy(),
    'output/gru_middle': y[cd.cfg.DATASET.seqlen // 2].numpy(),
    'output/verts_init': joints[:, m.vj_relation, :3].numpy(),
  }


def pmce_coevo_decoder(out: pathlib.Path) -> None:
  seqlen, num_joints, num_vertices, out_vertices, feat, hidden, dim = 8, 5, 12, 20, 24, 8, 8
  cd = _pmce_decoder_module(seqlen, dim)
  rng = np.random.default_rng(10)
  template = rng.normal(size=(num_joints, 3)) * 0.3
  init_vertices = rng.normal(size=(num_vertices, 3)) * 0.3
  torch.manual_seed(11)
  m = _pmce_decoder(cd, template, init_vertices, feat, hidden, out_vertices)
  _perturb(m, 12)
  g = torch.Generator().manual_seed(13)
  joints = torch.randn(3, num_joints, 3, generator=g) * 0.3
  img_feats = torch.randn(3, seqlen, feat, generator=g)
  outputs = _pmce_decoder_run(cd, m, joints, img_feats)
  meta = {
    'commit': '0f4075a7ef228e13382d65dbc67bdd3ce027cf4f',
    'dtype': 'float32',
    'mode': 'eval (DropPath/Dropout identity)',
    'notes': 'Official Pose2Mesh.forward on a stand-in instance (its __init__ needs CUDA, the SMPL '
    'mean mesh and mesh_downsampling.npz); cfg.DATASET.seqlen = 8. Variant fixture '
    '(experiments/fixture_variants).',
    'paper': 'PMCE (ICCV 2023)',
    'part': 'coevo_decoder',
    'perturbation': 'params+buffers += N(0,0.02), seeded',
    'reduced': {
      'coarse_vertices': f'431->{num_vertices}',
      'gru_hidden': f'1024->{hidden}',
      'img_feat': f'2048->{feat}',
      'joint_dim': dim,
      'output_vertices': f'6890->{out_vertices}',
      'vertx_dim': dim,
    },
    'repo': 'kasvii/PMCE',
    'shapes': 'joints (B,J,3) metres; img_feats (B,T,F); outputs joints3 (B,J,3), verts '
    '(B,V_out,3)',
    'vj_relation': [int(i) for i in m.vj_relation],
  }
  arrays = {
    **_state(m),
    'input/joints': joints.numpy(),
    'input/img_feats': img_feats.numpy(),
    **outputs,
  }
  _save(out, 'pmce__coevo_decoder_v1.npz', arrays, meta)


def pmce_full(out: pathlib.Path) -> None:
  """Official PMCE.forward on a stand-in instance: the pose stream (its imgfeat_embed
  Linear(F, C) instead of Linear(2048, 256), as the public pmce__full) + the stand-in decoder."""
  seqlen, num_joints, embed, depth = 8, 5, 16, 2
  num_vertices, out_vertices, feat, hidden, dim = 12, 20, 24, 8, 8
  cd = _pmce_decoder_module(seqlen, dim)
  pe = sys.modules['official_pmce_pose_estimation']
  _stub('models', CoevoDecoder=cd, PoseEstimation=pe)
  full = _load('official_pmce', _src('PMCE_SRC') / 'lib/models/PMCE.py')
  rng = np.random.default_rng(20)
  template = rng.normal(size=(num_joints, 3)) * 0.3
  init_vertices = rng.normal(size=(num_vertices, 3)) * 0.3
  torch.manual_seed(21)
  lifter = pe.GraphormerNet(num_frames=seqlen, num_joints=num_joints, embed_dim=embed, depth=depth)
  lifter.imgfeat_embed = torch.nn.Linear(feat, embed)
  model = full.PMCE.__new__(full.PMCE)
  torch.nn.Module.__init__(model)
  model.num_joint = num_joints
  model.pose_lifter = lifter
  model.pose_mesh_coevo = _pmce_decoder(cd, template, init_vertices, feat, hidden, out_vertices)
  model.eval()
  _perturb(model, 22)
  g = torch.Generator().manual_seed(23)
  pose2d = torch.rand(3, seqlen, num_joints, 2, generator=g) * 2 - 1
  img_feat = torch.randn(3, seqlen, feat, generator=g)
  with torch.no_grad():
    mesh, evo_pose, pose3d = model(pose2d, img_feat)
  meta = {
    'commit': '0f4075a7ef228e13382d65dbc67bdd3ce027cf4f',
    'dtype': 'float32',
    'mode': 'eval (DropPath/Dropout identity)',
    'notes': 'Official PMCE.forward: pose3d = lifter(pose2d, feat); (cam_pose, cam_mesh) = '
    "decoder(pose3d/1000, feat). Stand-in sizes as in the coevo_decoder variant; the lifter's "
    f'imgfeat_embed is Linear({feat},{embed}) instead of Linear(2048,256). Variant fixture '
    '(experiments/fixture_variants).',
    'paper': 'PMCE (ICCV 2023)',
    'part': 'full',
    'perturbation': 'params+buffers += N(0,0.02), seeded',
    'repo': 'kasvii/PMCE',
    'vj_relation': [int(i) for i in model.pose_mesh_coevo.vj_relation],
  }
  arrays = {
    **_state(model),
    'input/pose2d': pose2d.numpy(),
    'input/img_feat': img_feat.numpy(),
    'output/mesh': mesh.numpy(),
    'output/evo_pose': evo_pose.numpy(),
    'output/pose3d': pose3d.numpy(),
  }
  _save(out, 'pmce__full_v1.npz', arrays, meta)


def pmce_pose_stream(out: pathlib.Path) -> None:
  pe = _pmce_module()
  ctor = dict(num_frames=8, num_joints=5, embed_dim=16, depth=2, num_heads=4, mlp_ratio=2)
  torch.manual_seed(0)
  model = pe.GraphormerNet(**ctor).eval()
  _perturb(model, 1)
  g = torch.Generator().manual_seed(2)
  pose2d = torch.rand(3, 8, 5, 2, generator=g) * 2 - 1
  img_feat = torch.randn(3, 8, 2048, generator=g)
  with torch.no_grad():
    pose3d = model(pose2d, img_feat)
  call = ','.join(f'{k}={v}' for k, v in ctor.items())
  meta = {
    'commit': '0f4075a7ef228e13382d65dbc67bdd3ce027cf4f',
    'dtype': 'float32',
    'mode': 'eval (DropPath/Dropout identity)',
    'notes': f'GraphormerNet({call}); paper/config uses embed_dim 256. Variant fixture '
    '(experiments/fixture_variants).',
    'paper': 'PMCE (ICCV 2023)',
    'part': 'pose_stream',
    'perturbation': 'params+buffers += N(0,0.02), seeded',
    'repo': 'kasvii/PMCE',
    'shapes': 'pose2d (B,T,J,2) in [-1,1]; img_feat (B,T,2048); output (B,J,3)',
  }
  arrays = {
    **_state(model),
    'input/pose2d': pose2d.numpy(),
    'input/img_feat': img_feat.numpy(),
    'output/pose3d': pose3d.numpy(),
  }
  _save(out, 'pmce__pose_stream_v1.npz', arrays, meta)


def _dsr_modules(mean: pathlib.Path) -> tuple[types.ModuleType, types.ModuleType]:
  src = _src('DSR_SRC')
  geometry = _load('dsr.utils.geometry', src / 'dsr/utils/geometry.py')
  for pkg in ('dsr', 'dsr.utils', 'dsr.models', 'dsr.models.head'):
    sys.modules.setdefault(pkg, _stub(pkg))
  _stub('dsr.core')
  _stub('dsr.core.config', SMPL_MEAN_PARAMS=str(mean))
  head_mod = _load('dsr.models.head.hmr_head', src / 'dsr/models/head/hmr_head.py')
  return geometry, head_mod


def _dsr_head(head_mod, mean: pathlib.Path, channels: int, hidden: int) -> torch.nn.Module:
  head = head_mod.hmr_head(num_input_features=channels, smpl_mean_params=str(mean))
  # Reduced widths as in the public fixture: fc layers re-created, forward unchanged.
  npose = 24 * 6
  head.fc1 = torch.nn.Linear(channels + npose + 13, hidden)
  head.fc2 = torch.nn.Linear(hidden, hidden)
  head.decpose = torch.nn.Linear(hidden, npose)
  head.decshape = torch.nn.Linear(hidden, 10)
  head.deccam = torch.nn.Linear(hidden, 3)
  return head.eval()


def _dsr_run(geometry, head, feats, joints3d, n_iter, focal, img_res) -> dict:
  with torch.no_grad():
    o = head(feats, n_iter=n_iter)
    cam_t = geometry.convert_weak_perspective_to_perspective(o['pred_cam'], focal, img_res)
    b = feats.shape[0]
    eye = torch.eye(3).expand(b, 3, 3)
    kp = geometry.perspective_projection(joints3d, eye, cam_t, focal, torch.zeros(b, 2))
  return {
    'output/pred_rotmat': o['pred_pose'].numpy(),
    'output/pred_shape': o['pred_shape'].numpy(),
    'output/pred_cam': o['pred_cam'].numpy(),
    'output/pred_cam_t': cam_t.numpy(),
    'output/joints2d_norm': (kp / (img_res / 2.0)).numpy(),
  }


def dsr_hmr_head(out: pathlib.Path, tmp: pathlib.Path) -> None:
  n_iter, channels, hidden, batch, focal, img_res = 2, 24, 32, 3, 5000.0, 256
  rng = np.random.default_rng(3)
  mean = tmp / 'smpl_mean_params_synthetic.npz'
  eye6 = np.tile(np.float32([1, 0, 0, 1, 0, 0]), 24)  # reshape(-1, 3, 2) columns e_x, e_y
  np.savez(
    mean,
    pose=(eye6 + 0.1 * rng.standard_normal(144)).astype(np.float32),
    shape=(0.1 * rng.standard_normal(10)).astype(np.float32),
    cam=np.float32([0.9, 0.02, -0.03]),
  )
  geometry, head_mod = _dsr_modules(mean)
  torch.manual_seed(4)
  head = _dsr_head(head_mod, mean, channels, hidden)
  _perturb(head, 5)
  g = torch.Generator().manual_seed(6)
  feats = torch.randn(batch, channels, 7, 7, generator=g)
  joints3d = torch.randn(batch, 49, 3, generator=g) * 0.3
  axis_angle = torch.randn(5, 3, generator=g)
  rot6d = torch.randn(4, 6, generator=g)
  outputs = _dsr_run(geometry, head, feats, joints3d, n_iter, focal, img_res)
  with torch.no_grad():
    rod = geometry.batch_rodrigues(axis_angle)
    r6 = geometry.rot6d_to_rotmat(rot6d)
  half = img_res // 2
  meta = {
    'commit': '7d55d173192a44ec567864befd2fb20e993098eb',
    'dtype': 'float32',
    'mode': 'eval',
    'notes': f'SPIN regressor: xf = AvgPool2d(7)(layer4) ; {n_iter} iterations of [xf, '
    'pose6d(144), shape(10), cam(3)] -> fc1 -> dropout -> fc2 -> dropout -> residual '
    'decpose/decshape/deccam (NO nonlinearity between fc layers); init from smpl_mean_params '
    'buffers (synthetic here). rot6d_to_rotmat: Gram-Schmidt on the two columns of '
    'reshape(-1,3,2), returns stack((b1,b2,b3),-1). cam_t = [tx, ty, '
    f'2*{focal:g}/({img_res}*s+1e-9)]; joints2d = K-projection with principal point 0, divided '
    f'by {half}. batch_rodrigues goes through a quaternion with |theta+1e-8| norm. Variant '
    'fixture (experiments/fixture_variants).',
    'paper': 'DSR (ICCV 2021)',
    'part': 'hmr_head',
    'perturbation': 'params+buffers += N(0,0.02), seeded',
    'reduced': {'feature_channels': f'2048->{channels}', 'hidden': f'1024->{hidden}'},
    'repo': 'saidwivedi/DSR',
  }
  arrays = {
    **_state(head),
    'input/features': feats.numpy(),
    'input/joints3d': joints3d.numpy(),
    'input/axis_angle': axis_angle.numpy(),
    'input/rot6d': rot6d.numpy(),
    **outputs,
    'output/rodrigues': rod.numpy(),
    'output/rot6d_rotmat': r6.numpy(),
  }
  _save(out, 'dsr__hmr_head_v1.npz', arrays, meta)


def _epipolarpose_modules() -> tuple[types.ModuleType, types.ModuleType]:
  src = _src('EPIPOLARPOSE_SRC')
  # softmax_integral_tensor broadcasts its index ranges with torch.cuda.comm.broadcast; on CPU
  # that is the identity (the public fixture's shim).
  import torch.cuda.comm  # noqa: F401

  torch.cuda.comm.broadcast = lambda t, devices=None: [t]
  resnet = _load('official_pose3d_resnet', src / 'lib/models/pose3d_resnet.py')
  integral = _load('official_integral_loss', src / 'lib/core/integral_loss.py')
  return resnet, integral


def _epipolarpose_head(resnet, channels, filters, kernel, joints, depth_res) -> torch.nn.Module:
  """nn.Sequential(official _make_deconv_layer(2 layers), 1x1 conv): keys '0.*' and '1.*'."""
  owner = types.SimpleNamespace(inplanes=channels, deconv_with_bias=False)
  owner._get_deconv_cfg = types.MethodType(resnet.PoseResNet._get_deconv_cfg, owner)
  deconv = resnet.PoseResNet._make_deconv_layer(owner, 2, [filters] * 2, [kernel] * 2)
  final = torch.nn.Conv2d(filters, joints * depth_res, kernel_size=1, stride=1, padding=0)
  return torch.nn.Sequential(deconv, final).eval()


def _epipolarpose_run(integral, head, feats, gt, weight, joints, depth_res, patch) -> dict:
  with torch.no_grad():
    volume = head(feats)
    jn = integral.softmax_integral_tensor(
      volume, joints, True, volume.shape[-1], volume.shape[-2], depth_res
    )
    jp = integral.get_joint_location_result(patch, patch, volume)
    loss = integral.SmoothL1JointLocationLoss(joints)(volume, gt, weight)
  return {
    'output/volume': volume.numpy(),
    'output/joints_norm': jn.numpy(),
    'output/joints_patch': np.asarray(jp, np.float64),
    'output/loss': np.float32(loss.item()),
  }


def epipolarpose_integral_head(out: pathlib.Path) -> None:
  resnet, integral = _epipolarpose_modules()
  joints, depth_res, channels, filters, kernel, patch = 5, 8, 24, 12, 3, 192
  torch.manual_seed(7)
  head = _epipolarpose_head(resnet, channels, filters, kernel, joints, depth_res)
  _perturb(head, 8)
  with torch.no_grad():  # positive running variances after the perturbation
    for m in head.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_var.abs_().add_(0.5)
  g = torch.Generator().manual_seed(9)
  feats = torch.randn(3, channels, 2, 2, generator=g)
  gt = (torch.rand(3, joints * 3, generator=g) - 0.5).float()
  weight = torch.ones(3, joints * 3)
  weight[1, 4] = 0.0
  outputs = _epipolarpose_run(integral, head, feats, gt, weight, joints, depth_res, patch)
  meta = {
    'commit': '299ccb0acd4b0c57ef875aeb77b4e4e177c6accf',
    'depth_res': depth_res,
    'dtype': 'float32 for network tensors, float64 for geometry',
    'notes': f'head = official _make_deconv_layer(2 layers, {filters} filters, k={kernel}) + 1x1 '
    'conv to J*D channels; heatmap reshaped (B,J,D,H,W), softmax over D*H*W, coordinate = '
    'sum(p*idx)/size - 0.5 (NO +0.5 pixel centre); get_joint_location_result maps x,y to '
    f'{patch} px and z*{patch} (hm_depth assumed = hm_width). Loss: SmoothL1 summed over '
    'weighted entries / batch size. Params perturbed N(0,0.02), BN eval. Variant fixture '
    '(experiments/fixture_variants).',
    'num_joints': joints,
    'paper': 'EpipolarPose (CVPR 2019)',
    'part': 'integral_head',
    'repo': 'mkocabas/EpipolarPose',
    'state_dict_prefix': '0.=deconv Sequential, 1.=final conv',
  }
  arrays = {
    **_state(head),
    'input/features': feats.numpy(),
    'input/gt_label': gt.numpy(),
    'input/label_weight': weight.numpy(),
    **outputs,
  }
  _save(out, 'epipolarpose__integral_head_v1.npz', arrays, meta)


class _StandInBackbone(torch.nn.Module):
  """The public perspose__head_pe fixture's stand-in for HRNet-W48 (its meta 'backbone', research
  perspose.md section 7): stride-4 conv stem to 256 channels + cam_info, 1x1 conv to 48, spatial
  mean -> Linear(48, 2048). Ours (the generator's), not official code."""

  def __init__(self):
    super().__init__()
    self.stem = torch.nn.Conv2d(3, 256, kernel_size=4, stride=4)
    self.out = torch.nn.Conv2d(256, 48, kernel_size=1)
    self.fc = torch.nn.Linear(48, 2048)

  def forward(self, img, cam_info):
    feat = self.out(torch.relu(self.stem(img)) + cam_info)
    return feat, self.fc(feat.mean(dim=(2, 3)))


class _StubSMPL(torch.nn.Module):
  """IK stand-in (SMPL files are gated): returns the betas and zero theta / transl."""

  def ik_w_ortho_twist(self, xyz, twist, beta, leaf_rot=None):
    b = xyz.shape[0]
    return beta, torch.zeros(b, 24, 3, 3), torch.zeros(b, 3)


def _perspose_class() -> type:
  """The official PersPose class, its source exec'd with the one `.to('cuda')` removed (as the
  public fixture), get_hrnet -> the stand-in backbone, SMPL -> the stub."""
  src = _src('PERSPOSE_SRC')
  for name in ('common', 'common.model', 'common.model.HRNet'):
    _stub(name)
  _stub('common.smpl_wrapper', SMPL=lambda **kw: _StubSMPL())
  _stub('common.model.HRNet.HRNet_hybrik', get_hrnet=lambda *a, **kw: _StandInBackbone())
  _load('common.geometry', src / 'common/geometry.py')
  text = (src / 'src_PersPose/PersPose.py').read_text()
  if text.count(".to('cuda')") != 1:
    raise SystemExit("expected exactly one .to('cuda') in PersPose.py")
  module = types.ModuleType('official_perspose')
  module.__file__ = str(src / 'src_PersPose/PersPose.py')
  exec(compile(text.replace(".to('cuda')", ''), module.__file__, 'exec'), module.__dict__)  # noqa: S102
  return module.PersPose


def _perspose_run(model, img, K, names) -> dict:
  """Eval forward (flip test), the cam_layer output of the first (unflipped) pass, and the PE rays
  before the COCO mask (the cam_layer input of a pass with every sample marked non-COCO)."""
  seen = []
  hook = model.cam_layer.register_forward_hook(lambda m, i, o: seen.append((i[0], o)))
  with torch.no_grad():
    out = model({'img': img}, {'cam_intrinsics': K.clone(), 'dataset_name': names})
    model.inner(img, {'cam_intrinsics': K.clone(), 'dataset_name': ['3dhp'] * len(names)})
  hook.remove()
  keys = ('uv', 'depth', 'density', 'xyz', 'xyz0', 'ortho_twist', 'leaf_rot', 'beta')
  return {
    **{f'output/{k}': out[k].numpy() for k in keys},
    'output/cam_info_noflip_first8ch': seen[0][1][:, :8].numpy(),
    'output/pe_rays_before_mask': seen[-1][0].numpy(),
  }


def perspose_head_pe(out: pathlib.Path) -> None:
  h, w, batch = 64, 96, 3
  torch.manual_seed(30)
  model = _perspose_class()().eval()
  _perturb(model, 31)
  g = torch.Generator().manual_seed(32)
  img = torch.randn(batch, 3, h, w, generator=g)
  f = torch.tensor([70.0, 90.0, 110.0])
  K = torch.zeros(batch, 3, 3)
  K[:, 0, 0], K[:, 1, 1] = f, f * 1.05
  K[:, 0, 2] = torch.tensor([0.45, 0.5, 0.6]) * w
  K[:, 1, 2] = torch.tensor([0.55, 0.5, 0.4]) * h
  K[:, 2, 2] = 1.0
  names = ['3dhp', 'coco', 'hps_h36m']
  outputs = _perspose_run(model, img, K, names)
  meta = {
    'backbone': 'stand-in, not HRNet',
    'commit': '1863de7a455700d99280d4ce683efb726e42592b',
    'image': f'({batch},3,{h},{w}) -> {h // 4}x{w // 4} grid',
    'joint_num': 25,
    'notes': 'Official PersPose __init__/inner/forward with get_hrnet -> stand-in backbone and SMPL '
    '-> stub (IK returns zeros; theta/transl not stored); eval => flip test. Variant fixture '
    '(experiments/fixture_variants): non-square image, 3 samples, the second COCO.',
    'paper': 'PersPose (ICCV 2025)',
    'part': 'head_pe',
    'perturbation': 'params += N(0,0.02), seeded',
    'repo': 'KenAdamsJoseph/PersPose',
  }
  arrays = {
    **_state(model),
    'input/img': img.numpy(),
    'input/cam_intrinsics': K.numpy(),
    'input/dataset_is_coco': np.array([n == 'coco' for n in names]),
    **outputs,
  }
  _save(out, 'perspose__head_pe_v1.npz', arrays, meta)


def _public(parity_dir: pathlib.Path, name: str) -> tuple[dict, dict]:
  with np.load(parity_dir / name, allow_pickle=False) as z:
    arrays = {k: z[k] for k in z.files}
  meta = json.loads(str(arrays.pop('meta')))
  params = {k[len('param/') :]: torch.from_numpy(v) for k, v in arrays.items() if 'param/' in k}
  return arrays, {'meta': meta, 'params': params}


def _compare(name: str, ours: dict, public: dict) -> float:
  """Largest error relative to the array's largest magnitude (torch builds and thread counts
  differ from the public run in the last float32 bits)."""
  worst = 0.0
  for k, v in ours.items():
    err = float(np.max(np.abs(np.asarray(v, np.float64) - public[k])))
    rel = err / max(float(np.max(np.abs(public[k]))), 1e-12)
    worst = max(worst, rel)
    print(f'  {name} {k}: max abs {err:.2e}, relative to max |value| {rel:.2e}')
  return worst


def check(parity_dir: pathlib.Path, tmp: pathlib.Path) -> float:
  """Loads each PUBLIC fixture's weights into the module this harness builds with the public
  settings and reruns the official forward on the public inputs: the outputs must match, which
  shows that the harness (stubs, re-created layers) runs the official code as the public fixtures
  were made."""
  worst = 0.0
  a, f = _public(parity_dir, 'pmce__pose_stream.npz')
  model = _pmce_module().GraphormerNet(
    num_frames=16, num_joints=17, embed_dim=32, depth=3, num_heads=8, mlp_ratio=2
  )
  model.load_state_dict(f['params'])
  with torch.no_grad():
    y = model.eval()(torch.from_numpy(a['input/pose2d']), torch.from_numpy(a['input/img_feat']))
  worst = max(worst, _compare('pmce', {'output/pose3d': y.numpy()}, a))

  a, f = _public(parity_dir, 'pmce__coevo_decoder.npz')
  p = f['params']
  cd = _pmce_decoder_module(
    a['input/img_feats'].shape[1], p['coevoblock1.joint_proj.weight'].shape[0]
  )
  m = _pmce_decoder(
    cd,
    np.zeros((p['coevoblock1.joint_pos_embed'].shape[1], 3)),
    p['init_vertices'].numpy(),
    p['gru_cur.weight_ih_l0'].shape[1],
    p['gru_cur.weight_hh_l0'].shape[1],
    p['upsample_conv.weight'].shape[0],
  )
  m.load_state_dict(p)
  m.vj_relation = np.asarray(f['meta']['vj_relation'], np.int64)
  joints, feats = torch.from_numpy(a['input/joints']), torch.from_numpy(a['input/img_feats'])
  worst = max(worst, _compare('pmce decoder', _pmce_decoder_run(cd, m, joints, feats), a))

  a, f = _public(parity_dir, 'dsr__hmr_head.npz')
  mean = tmp / 'smpl_mean_params_check.npz'
  np.savez(
    mean,
    pose=np.zeros(144, np.float32),
    shape=np.zeros(10, np.float32),
    cam=np.zeros(3, np.float32),
  )
  geometry, head_mod = _dsr_modules(mean)
  hidden, fan_in = f['params']['fc1.weight'].shape
  head = _dsr_head(head_mod, mean, fan_in - 157, hidden)
  head.load_state_dict(f['params'])
  ours = _dsr_run(
    geometry,
    head,
    torch.from_numpy(a['input/features']),
    torch.from_numpy(a['input/joints3d']),
    3,
    5000.0,
    224,
  )
  worst = max(worst, _compare('dsr', ours, a))

  a, f = _public(parity_dir, 'epipolarpose__integral_head.npz')
  resnet, integral = _epipolarpose_modules()
  j, d = f['meta']['num_joints'], f['meta']['depth_res']
  head = _epipolarpose_head(resnet, 32, 16, 4, j, d)
  head.load_state_dict(f['params'])
  ours = _epipolarpose_run(
    integral,
    head,
    torch.from_numpy(a['input/features']),
    torch.from_numpy(a['input/gt_label']),
    torch.from_numpy(a['input/label_weight']),
    j,
    d,
    256,
  )
  worst = max(worst, _compare('epipolarpose', ours, a))
  a, f = _public(parity_dir, 'perspose__head_pe.npz')
  model = _perspose_class()().eval()
  model.load_state_dict(f['params'])
  names = ['coco' if c else '3dhp' for c in a['input/dataset_is_coco']]
  ours = _perspose_run(
    model, torch.from_numpy(a['input/img']), torch.from_numpy(a['input/cam_intrinsics']), names
  )
  worst = max(worst, _compare('perspose', ours, a))
  print(f'check: worst relative difference to the public fixtures {worst:.2e}')
  return worst


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--out', required=True, type=pathlib.Path)
  ap.add_argument('--only', choices=('pmce', 'dsr', 'epipolarpose', 'perspose'), action='append')
  ap.add_argument(
    '--check',
    type=pathlib.Path,
    metavar='PARITY_DIR',
    help='first rerun the public fixtures of PARITY_DIR through this harness (must match)',
  )
  args = ap.parse_args()
  args.out.mkdir(parents=True, exist_ok=True)
  torch.set_num_threads(1)
  with tempfile.TemporaryDirectory() as tmp:
    if args.check is not None and check(args.check, pathlib.Path(tmp)) > 1e-5:
      raise SystemExit('the harness does not reproduce the public fixtures')
    only = set(args.only or ('pmce', 'dsr', 'epipolarpose', 'perspose'))
    if 'pmce' in only:
      pmce_pose_stream(args.out)
      pmce_coevo_decoder(args.out)
      pmce_full(args.out)
    if 'dsr' in only:
      dsr_hmr_head(args.out, pathlib.Path(tmp))
    if 'epipolarpose' in only:
      epipolarpose_integral_head(args.out)
    if 'perspose' in only:
      perspose_head_pe(args.out)


if __name__ == '__main__':
  main()
