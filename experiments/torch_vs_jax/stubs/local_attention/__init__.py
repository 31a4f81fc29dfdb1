"""Placeholder for the `local_attention` package (MixSTE's routing attention, unused here)."""


class LocalAttention:
  def __init__(self, *args, **kwargs):
    raise NotImplementedError('local attention is not part of the benchmarked models')
