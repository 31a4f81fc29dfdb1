"""Frames per second for inference and for a training step, compile time, and MFU.

Protocol (what `jaxpose bench` reports):

* The function is jitted and compiled ahead of time (`lower(...).compile()`); that wall time is
  `compile_s` (and its process CPU time `compile_cpu_s`), kept apart from the steady state.
* `warmup` calls follow, then `repeats` timed windows of `iters` calls each, every window ending in
  `jax.block_until_ready`. The reported step time is the **median** window time / iters.
* frames/s = batch × output frames per clip / step time (output frames, the unit of MACs per frame).
* Training step: a generic one, the model's forward in `train=True` mode (dropout and friends on,
  `mutable=['batch_stats']` for BatchNorm models), MSE against random targets, `optax.adamw`,
  buffers donated. It measures the architecture's cost, not a paper's loss.
* dtype: parameters and inputs are cast to `dtype` (float32 or bfloat16). jaxpose modules leave
  `dtype=None`, so flax computes in the promoted dtype of params and inputs: **the model computes
  in the param dtype**. bfloat16 training here is pure bf16 (no float32 master weights), a cost
  measurement only.
* MFU = achieved matmul FLOP/s / measured peak. Achieved = 2 × MACs (all matmuls and convs,
  from the jaxpr walker; for training the walker counts forward, backward and optimizer dots of the
  actual step) / step time. The peak is measured here with a large square matmul in the same dtype
  (best of its repeats), not taken from a datasheet, so MFU is comparable across devices and dtypes.
  Peak and model run at the same default matmul precision (float32 may use TF32 on NVIDIA GPUs),
  so their ratio is consistent; on a CPU shared with other jobs it is noisy and can exceed 100%.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxpose.bench.flops import cast_floating, count_macs

RNG_STREAMS = ('dropout', 'noise', 'mask', 'drop_path')


@dataclasses.dataclass
class Timing:
  """Median seconds per call of a compiled function, its compile time and all window times.

  `compile_cpu_s` is the process CPU time (user + system) of tracing, lowering and compiling:
  unlike the wall time it does not grow when other jobs share the cores (XLA:CPU compiles one
  module on one thread).
  """

  step_s: float
  compile_s: float
  windows_s: list[float]
  compile_cpu_s: float | None = None


def time_fn(
  fn: Callable[..., Any],
  *args: Any,
  warmup: int = 2,
  repeats: int = 5,
  iters: int = 1,
  donate_argnums: tuple[int, ...] = (),
  carry: Callable[[Any, tuple], tuple] | None = None,
) -> Timing:
  """Compiles `fn` ahead of time, warms it up and returns the median time per call.

  Args:
    fn: the function to time (jitted here).
    *args: its arguments (concrete arrays).
    warmup: untimed calls after compiling.
    repeats: timed windows; the median window is reported.
    iters: calls per window.
    donate_argnums: arguments whose buffers `fn` may reuse.
    carry: `carry(out, args) -> args` builds the next call's arguments from the last output (for
      a train step that threads its state, which donation requires); default reuses `args`.
  """
  t0, c0 = time.perf_counter(), time.process_time()
  compiled = jax.jit(fn, donate_argnums=donate_argnums).lower(*args).compile()
  compile_s, compile_cpu_s = time.perf_counter() - t0, time.process_time() - c0
  step = carry or (lambda out, a: a)
  out = None
  for _ in range(warmup):
    out = compiled(*args)
    args = step(out, args)
  jax.block_until_ready(out)
  windows = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(iters):
      out = compiled(*args)
      args = step(out, args)
    jax.block_until_ready(out)
    windows.append((time.perf_counter() - t0) / iters)
  return Timing(statistics.median(windows), compile_s, windows, compile_cpu_s)


def default_peak_size() -> int:
  """Matmul side for the peak measurement: large on accelerators, small on CPU."""
  return 1024 if jax.default_backend() == 'cpu' else 8192


def measure_peak_flops(dtype: Any = jnp.float32, n: int | None = None, repeats: int = 5) -> float:
  """Measured dense-matmul peak FLOP/s of the default device: best of `repeats` n×n @ n×n."""
  n = n or default_peak_size()
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  b = jax.random.normal(jax.random.key(1), (n, n), dtype)
  t = time_fn(lambda a, b: a @ b, a, b, warmup=2, repeats=repeats, iters=3)
  return 2.0 * n**3 / min(t.windows_s)


def _rngs(step: jax.Array | int = 0) -> dict[str, jax.Array]:
  key = jax.random.fold_in(jax.random.key(0), step)
  return {name: jax.random.fold_in(key, i) for i, name in enumerate(RNG_STREAMS)}


def _macs_total(fn: Callable[..., Any], params_like: Any, *acts: Any) -> int | None:
  """All-matmul MACs of fn(params_like, *acts) via the walker, or None if it cannot count."""
  try:
    return count_macs(fn, params_like, *acts).total
  except ValueError:  # a while loop with matmuls: no static trip count
    return None


def inference_throughput(
  model: Any,
  variables: Any,
  x: jax.Array,
  *,
  dtype: Any = jnp.float32,
  peak_flops: float | None = None,
  **timing_kwargs: Any,
) -> dict[str, Any]:
  """Frames/s of `model.apply(variables, x, train=False)` at x's batch size, in `dtype`.

  Returns:
    dict with `infer_step_s`, `infer_compile_s` (`_cpu_s`: CPU time), `infer_fps` (output frames per second),
    `infer_macs` (all matmuls per step), `infer_mfu` (None without `peak_flops`).
  """
  variables = cast_floating(variables, dtype)
  x = x.astype(dtype)
  apply = lambda v, x: model.apply(v, x, train=False)
  out = jax.eval_shape(apply, variables, x)
  frames = x.shape[0] * jax.tree.leaves(out)[0].shape[1]
  t = time_fn(apply, variables, x, **timing_kwargs)
  macs = _macs_total(apply, variables, x)
  return {
    'infer_step_s': t.step_s,
    'infer_compile_s': t.compile_s,
    'infer_compile_cpu_s': t.compile_cpu_s,
    'infer_fps': frames / t.step_s,
    'infer_macs': macs,
    'infer_mfu': _mfu(macs, t.step_s, peak_flops),
  }


def _mfu(macs: int | None, step_s: float, peak: float | None) -> float | None:
  if macs is None or not peak:
    return None
  return 2.0 * macs / step_s / peak


def make_train_step(model: Any, tx: optax.GradientTransformation, has_batch_stats: bool):
  """A generic MSE + optimizer step: (params, extra, opt_state, x, y, step) -> same + loss."""

  def loss_fn(params, extra, x, y, step):
    variables = {'params': params, **extra}
    if has_batch_stats:
      pred, updates = model.apply(
        variables, x, train=True, rngs=_rngs(step), mutable=['batch_stats']
      )
      # flax BatchNorm keeps its statistics in float32; keep the state's dtypes fixed.
      updates = jax.tree.map(
        lambda u, o: u.astype(o.dtype), updates, {k: extra[k] for k in updates}
      )
      extra = {**extra, **updates}
    else:
      pred = model.apply(variables, x, train=True, rngs=_rngs(step))
    pred = jax.tree.leaves(pred)[0]
    return jnp.mean(jnp.square(pred.astype(jnp.float32) - y.astype(jnp.float32))), extra

  def train_step(params, extra, opt_state, x, y, step):
    (loss, extra), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, extra, x, y, step)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), extra, opt_state, loss, step + 1

  return train_step


def train_throughput(
  model: Any,
  variables: Any,
  x: jax.Array,
  *,
  dtype: Any = jnp.float32,
  peak_flops: float | None = None,
  learning_rate: float = 1e-4,
  **timing_kwargs: Any,
) -> dict[str, Any]:
  """Frames/s of one generic AdamW training step at x's batch size, in `dtype`.

  Returns:
    dict with `train_step_s`, `train_compile_s` (`_cpu_s`: CPU time), `train_fps`, `train_macs` (all matmuls of the
    whole step: forward, backward, optimizer) and `train_mfu`.
  """
  # A fresh copy: the step donates its state, which must not delete the caller's arrays.
  variables = jax.tree.map(jnp.copy, cast_floating(variables, dtype))
  params = variables['params']
  extra = {k: v for k, v in variables.items() if k != 'params'}
  x = x.astype(dtype)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  out = jax.tree.leaves(out)[0]
  y = jax.random.normal(jax.random.key(1), out.shape, dtype)
  tx = optax.adamw(learning_rate)
  opt_state = tx.init(params)
  step_fn = make_train_step(model, tx, 'batch_stats' in extra)
  step = jnp.zeros((), jnp.int32)
  macs = _macs_total(lambda s, x, y: step_fn(*s, x, y, step), (params, extra, opt_state), x, y)
  # The state buffers are donated, so each call must feed the previous call's outputs.
  rethread = lambda o, a: (o[0], o[1], o[2], a[3], a[4], o[4])
  t = time_fn(
    step_fn,
    params,
    extra,
    opt_state,
    x,
    y,
    step,
    donate_argnums=(0, 1, 2),
    carry=rethread,
    **timing_kwargs,
  )
  frames = x.shape[0] * out.shape[1]
  return {
    'train_step_s': t.step_s,
    'train_compile_s': t.compile_s,
    'train_compile_cpu_s': t.compile_cpu_s,
    'train_fps': frames / t.step_s,
    'train_macs': macs,
    'train_mfu': _mfu(macs, t.step_s, peak_flops),
  }


def init_variables(model: Any, x: jax.Array, seed: int = 0) -> Any:
  """Concrete variables for benchmarking: `model.init` on the first sample of x, op by op.

  Not jitted: compiling the whole init as one program costs far more than running it (a jitted
  MotionAGFormer-XS init took 29 CPU-s against 7 op by op, one thread), because every parameter's
  random initialiser becomes its own kernel. The parameters do not depend on the batch size.
  """
  return model.init(jax.random.key(seed), x[:1], train=False)
