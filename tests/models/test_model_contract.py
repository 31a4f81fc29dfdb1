"""The model contract (DESIGN.md), checked for every module the registry discovers.

For each model this builds its smallest configuration: the module's `TEST_VARIANT` or, when the
module offers `TEST_OVERRIDES`, its default variant shrunk with them, else the variant with the
fewest parameters. Float fields whose name contains 'drop' are set to 0.1 unless TEST_OVERRIDES
sets them, so dropout paths are active. Then it checks: the module exports; for lifters
(INPUT_KIND 'pose2d') (B, T, J, C_in) -> (B, T_out, J, 3) under jit, for other models finite float32
outputs with the batch axis first; eval needs no RNG and ignores the streams' keys; training gives finite, non-zero
gradients; and every RNG stream the module declares in `RNG_STREAMS` (default ('dropout',); () for
a model that is deterministic in training) is required and used.

Everything runs under jit, three compilations per model (init, eval, train value-and-grad): the
eager path compiles every primitive separately and is slower for whole models.
"""

import dataclasses

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpose.models as models

MODELS = models.list_models()
B = 2
DROP_RATE = 0.1


def _key(seed):
  # The rbg generator compiles much faster than threefry on CPU; statistics do not matter here.
  return jax.random.key(seed, impl='unsafe_rbg')


def _smallest_variant(name, mod):
  if getattr(mod, 'TEST_VARIANT', None):
    return mod.TEST_VARIANT
  table = list(getattr(mod, 'VARIANTS', {}))
  if not table or getattr(mod, 'TEST_OVERRIDES', None):
    return table[0] if table else None
  return min(table, key=lambda v: models.param_count(name, v))


def _drop_overrides(mod):
  return {
    f.name: DROP_RATE
    for f in dataclasses.fields(mod.Model)
    if 'drop' in f.name and isinstance(f.default, float)
  }


class Built:
  """A model in its test configuration with jitted eval and train (value-and-grad) functions."""

  def __init__(self, name):
    self.name = name
    self.mod = mod = models.get_module(name)
    overrides = {**_drop_overrides(mod), **getattr(mod, 'TEST_OVERRIDES', {})}
    self.model = model = models.build(name, _smallest_variant(name, mod), **overrides)
    self.kind = models.input_kind(model)
    self.xs = tuple(
      jax.random.normal(_key(1 + i), x.shape)
      for i, x in enumerate(models.example_inputs(model, batch=B))
    )
    self.x = self.xs[0]
    init = jax.jit(lambda k, *xs: model.init(k, *xs, train=False))
    self.variables = init(_key(0), *self.xs)
    self.streams = tuple(getattr(mod, 'RNG_STREAMS', ('dropout',)))
    # eval takes the declared streams' keys: a model must ignore them when train=False
    self.eval = jax.jit(lambda v, rngs, *xs: model.apply(v, *xs, train=False, rngs=rngs))
    mutable = [c for c in self.variables if c != 'params']

    def loss(params, rngs):
      v = {**self.variables, 'params': params}
      if mutable:
        out = model.apply(v, *self.xs, train=True, rngs=rngs, mutable=mutable)[0]
      else:
        out = model.apply(v, *self.xs, train=True, rngs=rngs)
      leaves = jax.tree.leaves(out)
      return sum(jnp.mean(jnp.square(o)) for o in leaves), leaves

    self.train = jax.jit(jax.value_and_grad(loss, has_aux=True))

  def keys(self, seed):
    """One key per declared RNG stream."""
    return {s: _key(seed + i) for i, s in enumerate(self.streams)}

  def train_out(self, rngs):
    """(all outputs flattened into one host vector, gradients)."""
    (_, out), grads = self.train(self.variables['params'], rngs)
    return np.concatenate([np.ravel(o) for o in out]), grads


@pytest.fixture(scope='module', params=MODELS)
def built(request):
  return Built(request.param)


def test_module_exports(built):
  name, mod = built.name, built.mod
  assert isinstance(built.model, mod.Model) and isinstance(built.model, flax.linen.Module)
  assert getattr(mod, 'VARIANTS', None), f'{name}: VARIANTS missing or empty'
  assert (mod.__doc__ or '').strip(), f'{name}: module docstring missing'
  if hasattr(mod, 'from_torch'):  # absent only for papers without official code
    assert callable(mod.from_torch)
  for f in dataclasses.fields(mod.Model):
    if f.name not in ('parent', 'name'):
      assert f.type, f'{name}: field {f.name} has no type annotation'


def test_shape_contract_under_jit(built):
  out = built.eval(built.variables, built.keys(30), *built.xs)
  x = built.x
  if built.kind != 'pose2d':  # image / multi-input models: documented pytrees, batch axis first
    leaves = jax.tree.leaves(out)
    assert leaves, f'{built.name}: no outputs'
    for o in leaves:
      assert o.dtype == jnp.float32 and o.shape[0] == B, f'{built.name}: output {o.shape}'
      assert np.isfinite(np.asarray(o)).all()
    return
  assert out.dtype == jnp.float32
  assert out.ndim == 4 and out.shape[0] == B and out.shape[2:] == (x.shape[2], 3), (
    f'{built.name}: output {out.shape} for input {x.shape}'
  )
  assert 1 <= out.shape[1] <= x.shape[1]
  assert np.isfinite(np.asarray(out)).all()


def test_eval_needs_no_rng_and_ignores_the_streams(built):
  """train=False is deterministic: it traces without any RNG (no stream is required), and other
  keys for every declared stream give the same output (no dropout or drop path left on)."""
  model = built.model
  jax.eval_shape(lambda v, *xs: model.apply(v, *xs, train=False), built.variables, *built.xs)
  a = built.eval(built.variables, built.keys(30), *built.xs)
  b = built.eval(built.variables, built.keys(40), *built.xs)
  jax.tree.map(np.testing.assert_array_equal, a, b)


def test_training_gradients_are_finite(built):
  rngs = {s: _key(10 + i) for i, s in enumerate(built.streams)}
  out, grads = built.train_out(rngs)
  assert np.isfinite(out).all()
  leaves = [np.asarray(g) for g in jax.tree.leaves(grads)]
  assert all(np.isfinite(g).all() for g in leaves), f'{built.name}: non-finite gradients'
  assert any(np.any(g != 0) for g in leaves), f'{built.name}: all gradients are zero'


def test_rng_streams_are_named_and_used(built):
  name, streams = built.name, built.streams
  if not streams:
    pytest.skip(f'{name} declares RNG_STREAMS = ()')
  keys = {s: _key(20 + i) for i, s in enumerate(streams)}
  for s in streams:
    with pytest.raises(flax.errors.InvalidRngError):
      built.train_out({k: v for k, v in keys.items() if k != s})
  base, _ = built.train_out(keys)
  np.testing.assert_array_equal(built.train_out(keys)[0], base)
  for s in streams:
    changed, _ = built.train_out({**keys, s: _key(99)})
    assert not np.allclose(changed, base), (
      f'{name}: train output ignores the {s!r} RNG stream; declare RNG_STREAMS (() if training '
      'is deterministic) or enable the randomness in TEST_OVERRIDES'
    )
