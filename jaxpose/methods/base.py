"""The method contract: one frozen dataclass of the functions the trainer and the evaluator call.

A method module `jaxpose/methods/<name>.py` exports `METHOD = Method(loss_fn=..., predict=...,
...)`; `config.method.name = '<name>'` selects it (`jaxpose.methods.get`). The trainer
(`jaxpose.train.loop`), the eval step (`jaxpose.eval.steps`) and the command lines read the fields
of `METHOD`; a hook left out takes the default documented on its field.

Shapes: B batch, T input frames, T_out output frames (T, or 1 for seq2frame models), J joints,
C_in input channels (2, or 3 with a confidence). `kp2d_norm` is 2D in normalised screen
coordinates (x / w * 2 - [1, h / w]); `pose3d_cam` is metres, camera frame, root-relative.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc

from jaxpose import models
from jaxpose.data import pipeline

# (loss () float32, (scalars {name: () float32}, new_model_state)).
LossOut = tuple[jax.Array, tuple[dict[str, jax.Array], dict[str, Any]]]


def lifter_init_inputs(config: mlc.ConfigDict, model: Any) -> tuple[jax.Array, ...]:
  """The default `init_inputs`: one zero lifter window (1, data.frames, data.num_joints, C_in),
  C_in = 3 with data.use_conf else 2, float32."""
  del model
  shape = (1, config.data.frames, config.data.num_joints, 3 if config.data.use_conf else 2)
  return (jnp.zeros(shape, jnp.float32),)


def default_train_iterator(
  config: mlc.ConfigDict, *, seed: int, process_index: int = 0, process_count: int = 1
) -> Iterator[dict[str, Any]]:
  """The default `train_iterator`: the resumable grain iterator of `config.data`'s train split."""
  return pipeline.train_iterator(
    config.data, seed=seed, process_index=process_index, process_count=process_count
  )


def no_eval_metrics(
  model: Any, variables: Mapping[str, Any], batch: Mapping[str, jax.Array], config: mlc.ConfigDict
) -> dict[str, jax.Array]:
  """The default `eval_metrics`: no per-frame metrics beyond the engine's own."""
  del model, variables, batch, config
  return {}


@dataclasses.dataclass(frozen=True)
class Method:
  """What a method gives the engine. `loss_fn` and `predict` are required; the rest have defaults.

  Attributes:
    loss_fn: `(model, params, model_state, batch, rng, config) -> (loss, (scalars, model_state))`.
      `batch` is the engine batch (`jaxpose.data.pipeline`: kp2d_norm (B, T, J, C_in),
      pose3d_cam (B, T_out, J, 3) metres, valid (B, T_out) ...); `rng` the step key; `loss` a ()
      float32 scalar, `scalars` {name: ()} logged as given, `model_state` the updated mutable
      collections (`{}` without BatchNorm).
    predict: `(model, variables, kp2d_norm, config) -> pose3d_cam`: kp2d_norm (B, T, J, C_in) ->
      (B, T_out, J, 3) metres, camera frame, root-relative.
    make_model: `(config) -> model`, the network the method trains. Default:
      `jaxpose.models.build_from_config(config)` (the configured registry model).
    init_inputs: `(config, model) -> tuple of arrays`, the example inputs `model.init` is called
      with. Default: `lifter_init_inputs`, one zero window (1, data.frames, data.num_joints,
      C_in); image methods return ((1, H, W, 3) float32,).
    init_variables: `(config, model, loaded) -> variables` of a fresh run, for a method whose
      variables are more than one network's ({'params': trainable, other collections: frozen
      networks or EMA state}); `loaded` is the `config.init_from` checkpoint's variables (loaded by
      the trainer) or None. Default None: `model.init`, or the `init_from` variables.
    adapt_init: `(loaded, fresh) -> variables`, maps `init_from` weights that cover part of the
      network onto a fresh initialisation. Default None: the loaded variables are used as they are.
    train_iterator: `(config, *, seed, process_index, process_count) -> iterator` of per-host
      batches with get_state/set_state (possibly nested, e.g. two domains). Default:
      `default_train_iterator` (config.data's train split).
    predict_batch: `(model, variables, batch, config) -> pose3d_cam (B, T_out, J, 3)`, for an
      evaluation that needs more than the 2D (cameras, roots). Default: `predict` on
      batch['kp2d_norm'].
    eval_metrics: `(model, variables, batch, config) -> {name: (B, T_out) float32}`, per-frame
      metrics the evaluator aggregates like MPJPE. Default: `no_eval_metrics` ({}).
    run: `(config, workdir) -> results`, a method whose loop differs from the default trainer's;
      `jaxpose train` calls it instead of `jaxpose.train.loop.run`. Default None: the default
      trainer.
  """

  loss_fn: Callable[..., LossOut]
  predict: Callable[..., jax.Array]
  make_model: Callable[[mlc.ConfigDict], Any] = models.build_from_config
  init_inputs: Callable[[mlc.ConfigDict, Any], tuple[jax.Array, ...]] = lifter_init_inputs
  init_variables: Callable[..., dict[str, Any]] | None = None
  adapt_init: Callable[[Any, Any], Any] | None = None
  train_iterator: Callable[..., Iterator[dict[str, Any]]] = default_train_iterator
  predict_batch: Callable[..., jax.Array] | None = None
  eval_metrics: Callable[..., dict[str, jax.Array]] = no_eval_metrics
  run: Callable[[mlc.ConfigDict, Any], Any] | None = None

  def __post_init__(self):
    for name in ('loss_fn', 'predict'):
      if not callable(getattr(self, name)):
        raise TypeError(f'Method.{name} must be callable, got {getattr(self, name)!r}')
    if self.predict_batch is None:
      predict = self.predict

      def predict_batch(model, variables, batch, config):
        return predict(model, variables, batch['kp2d_norm'], config)

      object.__setattr__(self, 'predict_batch', predict_batch)
