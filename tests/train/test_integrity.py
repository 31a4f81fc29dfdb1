"""A damaged checkpoint never loads as weights (issue 19, item 1).

One small checkpoint (steps 1 and 2 of a TrainState whose 64 x 1024 kernel is big enough for
OCDBT to store it in its own data file, plus a grain iterator) is written once; each case copies
it, damages one file of step 2 (64 zeroed bytes near the start or in the middle, or the file cut
to half its length) and checks both restore paths: resuming falls back to step 1 (same weights,
same data position, one line naming step 2) and `load_params` on the step directory raises naming
it. Orbax/TensorStore catch some damage (unreadable), a JSON parse other; zeroed bytes inside the
array data file decode without error (what issue 19 saw: weights off by 2e37) and only the CRC-32
record catches them. The per-process OCDBT manifest is not read once the root one exists: damage
there is harmless, and the test checks the weights that load are the saved ones.
"""

import json
import pathlib
import shutil

import flax.linen as nn
import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpose import sharding
from jaxpose.train import checkpoint, integrity
from jaxpose.train import state as state_lib

# kind: glob (relative to ckpt/2) of the file damaged; the largest match is taken.
FILES = {
  'array data file': 'state/ocdbt.process_0/d/*',
  'b-tree node (state/d)': 'state/d/*',
  '_METADATA': 'state/_METADATA',
  'manifest (state)': 'state/manifest.ocdbt',
  'manifest (process)': 'state/ocdbt.process_0/manifest.ocdbt',
  'sharding': 'state/_sharding',
  'array_metadatas': 'state/array_metadatas/process_0',
  '_CHECKPOINT_METADATA': '_CHECKPOINT_METADATA',
  'meta JSON (config)': 'meta/metadata',
  'data iterator JSON': 'data/process_0-of-1.json',
  'integrity record': 'integrity/metadata',
}
MODES = ('zero_head', 'zero_mid', 'truncate')
CASES = [(kind, mode) for kind in FILES for mode in MODES]
HARMLESS = {'manifest (process)'}  # not read: the root manifest and b-tree point at the data


class Wide(nn.Module):
  @nn.compact
  def __call__(self, x, *, train: bool):
    del train
    return nn.Dense(3)(nn.Dense(1024)(x))


def _state(seed: int):
  return state_lib.create(Wide(), optax.adamw(1e-3), jnp.zeros((1, 64)), seed=seed)


def _iterator():
  return iter(grain.MapDataset.range(64).batch(4).to_iter_dataset())


@pytest.fixture(scope='module')
def template(tmp_path_factory):
  """A workdir with ckpt/1 and ckpt/2 (different weights, data positions 1 and 2)."""
  root = tmp_path_factory.mktemp('integrity')
  ck = checkpoint.Checkpointer(root, keep=3, async_save=False)
  it = _iterator()
  states = {}
  for step in (1, 2):
    next(it)
    state = _state(step)  # device arrays, as the trainer saves them (Orbax adds _sharding)
    ck.save(step, state, it, {'run': 'integrity test', 'step': step})
    states[step] = jax.device_get(state)
  ck.close()
  return root, states


def damage(path: pathlib.Path, mode: str) -> None:
  """Zeroes 64 bytes at offset 100 ('zero_head') or in the middle ('zero_mid') of `path`, or
  cuts it to half its length ('truncate'); a file under 200 bytes is zeroed from its middle."""
  data = bytearray(path.read_bytes())
  if mode == 'truncate':
    data = data[: len(data) // 2]
  else:
    n = min(64, len(data))
    start = 100 if mode == 'zero_head' and len(data) >= 200 else (len(data) - n) // 2
    data[start : start + n] = bytes(n)
  path.write_bytes(bytes(data))


def _target():
  mesh = sharding.make_mesh(1)
  return checkpoint.abstract_like(jax.eval_shape(lambda: _state(0)), sharding.replicated(mesh))


def _damaged_copy(template, tmp_path, kind, mode) -> pathlib.Path:
  root = tmp_path / 'run'
  shutil.copytree(template, root)
  step2 = root / 'ckpt' / '2'
  path = max(step2.glob(FILES[kind]), key=lambda p: p.stat().st_size)
  damage(path, mode)
  return root


@pytest.mark.parametrize(('kind', 'mode'), CASES)
def test_damaged_step_is_detected_and_resume_falls_back(template, tmp_path, capsys, kind, mode):
  src, states = template
  root = _damaged_copy(src, tmp_path, kind, mode)
  if kind in HARMLESS:
    host = checkpoint.load_params(root / 'ckpt' / '2')
    jax.tree.map(np.testing.assert_array_equal, host['params'], states[2].params)
    return
  with pytest.raises(integrity.CheckpointIntegrityError, match=str(root / 'ckpt' / '2')):
    checkpoint.load_params(root / 'ckpt' / '2')
  it = _iterator()
  ck = checkpoint.Checkpointer(root, keep=3, async_save=False)
  restored = ck.restore(_target(), it)
  ck.close()
  err = capsys.readouterr().err
  assert f'skipping checkpoint {root / "ckpt" / "2"}' in err, err
  assert 'resumed from ckpt/1 instead' in err
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored), states[1])
  np.testing.assert_array_equal(next(it), np.arange(4, 8))  # the data position of step 1
  assert not (root / 'ckpt' / '2').exists() and list((root / 'quarantine').glob('ckpt_2_*'))


def test_intact_checkpoint_restores_and_verifies(template, tmp_path, capsys):
  src, states = template
  root = tmp_path / 'run'
  shutil.copytree(src, root)
  host = checkpoint.load_params(root, 'latest')
  jax.tree.map(np.testing.assert_array_equal, host['params'], states[2].params)
  ck = checkpoint.Checkpointer(root, keep=3, async_save=False)
  restored = ck.restore(_target(), _iterator())
  ck.close()
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored), states[2])
  assert 'skipping' not in capsys.readouterr().err


def test_workdir_load_falls_back_and_none_verifying_lists_all(template, tmp_path, capsys):
  src, states = template
  root = tmp_path / 'run'
  shutil.copytree(src, root)
  data_file = max(
    (root / 'ckpt/2/state/ocdbt.process_0/d').iterdir(), key=lambda p: p.stat().st_size
  )
  damage(data_file, 'zero_head')
  host = checkpoint.load_params(root)  # `jaxpose eval --workdir`: no best/, newest ckpt first
  jax.tree.map(np.testing.assert_array_equal, host['params'], states[1].params)
  assert 'loaded ckpt/1 instead' in capsys.readouterr().err
  damage(root / 'ckpt/1/state/_METADATA', 'truncate')
  with pytest.raises(integrity.CheckpointIntegrityError, match='verifies:\n.*ckpt/2.*\n.*ckpt/1'):
    checkpoint.load_params(root)
  assert (root / 'ckpt' / '2').exists()  # loading for evaluation never moves anything


def test_checksum_names_the_leaf(template, tmp_path):
  """Flipped bytes that still decode (what Orbax cannot see) fail the CRC of that leaf."""
  src, _ = template
  root = tmp_path / 'run'
  shutil.copytree(src, root)
  rec_path = root / 'ckpt/2/integrity/metadata'
  rec = json.loads(rec_path.read_text())
  rec['leaves']['params/Dense_1/bias'][0] ^= 1
  rec_path.write_text(json.dumps(rec))
  with pytest.raises(integrity.CheckpointIntegrityError, match='leaf params/Dense_1/bias fails'):
    checkpoint.load_params(root / 'ckpt' / '2')


def test_state_files_of_another_step_fail_the_checksum(template, tmp_path):
  """A mix-up that Orbax reads happily (step 1's arrays under step 2's record) is caught."""
  src, _ = template
  root = tmp_path / 'run'
  shutil.copytree(src, root)
  shutil.rmtree(root / 'ckpt/2/state')
  shutil.copytree(root / 'ckpt/1/state', root / 'ckpt/2/state')
  with pytest.raises(
    integrity.CheckpointIntegrityError, match='ckpt/2: leaf .* fails its checksum'
  ):
    checkpoint.load_params(root / 'ckpt' / '2')
