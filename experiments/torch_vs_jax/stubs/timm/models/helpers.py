"""Imported by MixSTE's model file and never called there."""


def load_pretrained(*args, **kwargs):
  raise NotImplementedError('the benchmark never loads timm weights')
