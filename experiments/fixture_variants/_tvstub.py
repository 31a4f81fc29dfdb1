"""A stand-in `torchvision` for importing timm where no torchvision matches the installed torch.

timm imports torchvision at import time (transforms, datasets, `ops.misc.FrozenBatchNorm2d`); the
timm layers the fixture generator uses (Attention, Mlp, DropPath) never touch it. Importing this
module installs a meta-path finder that answers every `torchvision.*` import with an empty module
whose attributes are a do-nothing class, and a real `InterpolationMode` enum (timm builds lookup
tables from its members).
"""

import enum
import importlib.abc
import importlib.machinery
import sys
import types

InterpolationMode = enum.Enum(
  'InterpolationMode', 'NEAREST NEAREST_EXACT BILINEAR BICUBIC BOX HAMMING LANCZOS'
)


class _Any(type):
  def __getattr__(cls, name):
    if name.startswith('__'):
      raise AttributeError(name)
    return cls

  def __call__(cls, *args, **kwargs):
    return cls


Dummy = _Any('Dummy', (), {})


class _Module(types.ModuleType):
  def __getattr__(self, name):
    if name == 'InterpolationMode':
      return InterpolationMode
    if name.startswith('__'):
      raise AttributeError(name)
    return Dummy


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  def find_spec(self, name, path, target=None):
    leaf = name.rsplit('.', 1)[-1]
    if (name == 'torchvision' or name.startswith('torchvision.')) and not leaf[:1].isupper():
      return importlib.machinery.ModuleSpec(name, self, is_package=True)
    return None

  def create_module(self, spec):
    module = _Module(spec.name)
    module.__path__ = []
    return module

  def exec_module(self, module):
    pass


sys.meta_path.insert(0, _Finder())
