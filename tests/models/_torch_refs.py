"""Small PyTorch reference networks for the converter tests (written here, not vendored).

They reproduce the module layout and state-dict key names of torchvision's ResNet, the official
pose HRNet (`pose_hrnet.py` of deep-high-resolution-net.pytorch, with the HybrIK/PersPose
classification head) and EpipolarPose's deconvolution head, so `from_torch` can be checked number
for number on random weights at toy widths. torch is imported by the caller (importorskip).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _bn(c):
  return nn.BatchNorm2d(c, momentum=0.1)


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, cin, planes, stride=1):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
    self.bn1 = _bn(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = _bn(planes)
    self.downsample = None
    if stride != 1 or cin != planes:
      self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), _bn(planes))

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, cin, planes, stride=1):
    super().__init__()
    out = planes * 4
    self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
    self.bn1 = _bn(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
    self.bn2 = _bn(planes)
    self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
    self.bn3 = _bn(out)
    self.downsample = None
    if stride != 1 or cin != out:
      self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), _bn(out))

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = torch.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


RESNET_SPECS = {
  18: (BasicBlock, (2, 2, 2, 2)),
  34: (BasicBlock, (3, 4, 6, 3)),
  50: (Bottleneck, (3, 4, 6, 3)),
}


def _layer(block, cin, planes, n, stride):
  blocks = [block(cin, planes, stride)]
  blocks += [block(planes * block.expansion, planes) for _ in range(n - 1)]
  return nn.Sequential(*blocks)


class ResNet(nn.Module):
  """torchvision-layout ResNet; `num_classes=None` drops avgpool + fc (a backbone)."""

  def __init__(self, depth=18, width=64, num_classes=1000):
    super().__init__()
    block, counts = RESNET_SPECS[depth]
    self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    self.bn1 = _bn(width)
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    cin = width
    for i, n in enumerate(counts):
      planes = width * 2**i
      setattr(self, f'layer{i + 1}', _layer(block, cin, planes, n, 1 if i == 0 else 2))
      cin = planes * block.expansion
    self.out_channels = cin
    self.fc = nn.Linear(cin, num_classes) if num_classes else None

  def features(self, x):
    x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
    for i in range(4):
      x = getattr(self, f'layer{i + 1}')(x)
    return x

  def forward(self, x):
    x = self.features(x)
    return self.fc(x.mean(dim=(2, 3))) if self.fc is not None else x


class PoseResNet(ResNet):
  """EpipolarPose's `PoseResNet` (VOLUME on): ResNet + deconv head + final conv to J*D."""

  def __init__(self, depth, width, num_joints, depth_res, filters, kernel=4):
    super().__init__(depth, width, num_classes=None)
    pad, out_pad = {4: (1, 0), 3: (1, 1), 2: (0, 0)}[kernel]
    layers, cin = [], self.out_channels
    for f in filters:
      layers += [
        nn.ConvTranspose2d(cin, f, kernel, 2, pad, out_pad, bias=False),
        _bn(f),
        nn.ReLU(),
      ]
      cin = f
    self.deconv_layers = nn.Sequential(*layers)
    self.final_layer = nn.Conv2d(cin, num_joints * depth_res, 1)

  def forward(self, x):
    return self.final_layer(self.deconv_layers(self.features(x)))


class _Fuse(nn.Module):
  """One HighResolutionModule (SUM fusion) with the official child names."""

  def __init__(self, channels, blocks, multi_scale):
    super().__init__()
    nb = len(channels)
    self.branches = nn.ModuleList(
      nn.Sequential(*[BasicBlock(c, c) for _ in range(blocks)]) for c in channels
    )
    rows = []
    for i in range(nb if multi_scale else 1):
      row = []
      for j in range(nb):
        if j > i:
          row.append(
            nn.Sequential(
              nn.Conv2d(channels[j], channels[i], 1, 1, 0, bias=False),
              nn.BatchNorm2d(channels[i]),
              nn.Upsample(scale_factor=2 ** (j - i), mode='nearest'),
            )
          )
        elif j == i:
          row.append(None)
        else:
          steps = []
          for k in range(i - j):
            last = k == i - j - 1
            out = channels[i] if last else channels[j]
            mods = [nn.Conv2d(channels[j], out, 3, 2, 1, bias=False), nn.BatchNorm2d(out)]
            steps.append(nn.Sequential(*(mods if last else [*mods, nn.ReLU()])))
          row.append(nn.Sequential(*steps))
      rows.append(nn.ModuleList(row))
    self.fuse_layers = nn.ModuleList(rows)

  def forward(self, xs):
    xs = [b(x) for b, x in zip(self.branches, xs)]
    out = []
    for i, row in enumerate(self.fuse_layers):
      y = xs[0] if i == 0 else row[0](xs[0])
      for j in range(1, len(xs)):
        y = y + (xs[j] if i == j else row[j](xs[j]))
      out.append(torch.relu(y))
    return out


def _transition(prev, cur):
  mods = []
  for i, c in enumerate(cur):
    if i < len(prev):
      mods.append(
        None
        if c == prev[i]
        else nn.Sequential(nn.Conv2d(prev[i], c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
      )
    else:
      steps = []
      for j in range(i + 1 - len(prev)):
        out = c if j == i - len(prev) else prev[-1]
        steps.append(
          nn.Sequential(
            nn.Conv2d(prev[-1], out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()
          )
        )
      mods.append(nn.Sequential(*steps))
  return nn.ModuleList(mods)


class HRNet(nn.Module):
  """Pose HRNet with the official key names; `cls_head` adds the HybrIK/PersPose feature head."""

  def __init__(
    self,
    width=4,
    num_joints=5,
    modules=(1, 1, 1),
    blocks=1,
    cls_head=False,
    head_width=4,
    feat_dim=16,
    stem=64,
  ):
    super().__init__()
    self.conv1 = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
    self.bn1 = _bn(stem)
    self.conv2 = nn.Conv2d(stem, stem, 3, 2, 1, bias=False)
    self.bn2 = _bn(stem)
    self.layer1 = _layer(Bottleneck, stem, stem, 4, 1)
    prev = [stem * 4]
    for s, m in enumerate(modules):
      cur = [width * 2**b for b in range(s + 2)]
      setattr(self, f'transition{s + 1}', _transition(prev, cur))
      last_stage = s == len(modules) - 1
      mods = [_Fuse(cur, blocks, cls_head or not (last_stage and k == m - 1)) for k in range(m)]
      setattr(self, f'stage{s + 2}', nn.Sequential(*mods))
      prev = cur
    self.final_layer = nn.Conv2d(width, num_joints, 1) if num_joints else None
    self.cls_head = cls_head
    if cls_head:
      hc = [head_width * 2**i for i in range(4)]
      self.incre_modules = nn.ModuleList(nn.Sequential(Bottleneck(c, h)) for c, h in zip(prev, hc))
      self.downsamp_modules = nn.ModuleList(
        nn.Sequential(nn.Conv2d(4 * hc[i], 4 * hc[i + 1], 3, 2, 1), _bn(4 * hc[i + 1]), nn.ReLU())
        for i in range(3)
      )
      self.final_feat_layer = nn.Sequential(
        nn.Conv2d(4 * hc[3], feat_dim, 1), _bn(feat_dim), nn.ReLU()
      )

  def forward(self, x):
    x = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
    ys = [self.layer1(x)]
    for s in range(3):
      trans = getattr(self, f'transition{s + 1}')
      xs = [
        (t(ys[-1] if i >= len(ys) else ys[i]) if t is not None else ys[i])
        for i, t in enumerate(trans)
      ]
      ys = getattr(self, f'stage{s + 2}')(xs)
    out = {'features': ys[0]}
    if self.final_layer is not None:
      out['heatmaps'] = self.final_layer(ys[0])
    if self.cls_head:
      y = self.incre_modules[0](ys[0])
      for i in range(3):
        y = self.incre_modules[i + 1](ys[i + 1]) + self.downsamp_modules[i](y)
      out['global_feat'] = self.final_feat_layer(y).mean(dim=(2, 3))
    return out


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
  """Random weights and BN statistics (so eval-mode BN is not the identity); returns model.eval()."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, t in model.state_dict().items():
      if not t.dtype.is_floating_point:
        continue
      if name.endswith('running_var'):
        t.copy_(torch.rand(t.shape, generator=g) + 0.5)
      elif name.endswith('running_mean'):
        t.copy_(0.2 * torch.randn(t.shape, generator=g))
      elif t.ndim == 1:  # BN scale (kept below 1 so deep nets stay O(1)) / shift, biases
        base = 0.6 if name.endswith('weight') else 0.0
        t.copy_(base + 0.1 * torch.randn(t.shape, generator=g))
      else:
        fan_in = t[0].numel()
        t.copy_(torch.randn(t.shape, generator=g) / np.sqrt(fan_in))
  return model.eval()


def state_dict_numpy(model: nn.Module) -> dict[str, np.ndarray]:
  return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def to_nchw(x: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def to_nhwc(t: torch.Tensor) -> np.ndarray:
  return t.detach().cpu().numpy().transpose(0, 2, 3, 1)
