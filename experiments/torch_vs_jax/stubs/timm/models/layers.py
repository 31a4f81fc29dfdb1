"""DropPath (per-sample stochastic depth), to_2tuple and trunc_normal_, written for the benchmark."""

import torch
from torch import nn


class DropPath(nn.Module):
  """Zeroes whole samples with probability `drop_prob` in training and rescales the rest."""

  def __init__(self, drop_prob=0.0):
    super().__init__()
    self.drop_prob = float(drop_prob or 0.0)

  def forward(self, x):
    if not self.training or self.drop_prob == 0.0:
      return x
    keep = 1.0 - self.drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


def to_2tuple(x):
  return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
  return nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)


__all__ = ['DropPath', 'to_2tuple', 'trunc_normal_', 'torch']
