"""Every paper config loads (default and smoke), is locked, and only uses declared keys;
typos fail with the valid keys; sweeps expand and validate before launching."""

import importlib
import pathlib

import pytest

from configs import common
from jaxpose import models
from jaxpose.cli import sweep
from jaxpose.cli import train as cli

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / 'configs'
PAPER_CONFIGS = sorted(
  p.stem for p in CONFIG_DIR.glob('*.py') if p.stem not in ('__init__', 'common')
)


def _flat_keys(d, prefix=''):
  out = set()
  for k, v in d.items():
    open_block = (prefix + k).startswith(('model.kwargs', 'method.kwargs'))
    if hasattr(v, 'items') and not open_block:
      out |= _flat_keys(v, f'{prefix}{k}.')
    elif not open_block:
      out.add(prefix + k)
  return out


BASE_KEYS = _flat_keys(common.get_base_config())


@pytest.mark.parametrize('name', PAPER_CONFIGS)
@pytest.mark.parametrize('arg', [None, 'smoke'])
def test_config_loads_locked_and_declared(name, arg):
  mod = importlib.import_module(f'configs.{name}')
  c = mod.get_config(arg)
  assert c.is_locked
  assert _flat_keys(c) <= BASE_KEYS, _flat_keys(c) - BASE_KEYS
  assert c.model.name in models.list_models()
  fields = set(models.model_fields(c.model.name))
  assert set(c.model.kwargs.keys()) <= fields
  assert isinstance(mod.REFERENCE, dict) and mod.REFERENCE.get('source')
  assert mod.__doc__ and 'jaxpose train' in mod.__doc__  # the run book
  with pytest.raises(AttributeError):
    c.optim.lrr = 1.0  # locked: typos fail


def test_cli_override_typo_lists_valid_keys():
  with pytest.raises(SystemExit) as e:
    cli.parse(['train', '--config=configs/motionagformer.py:xs,smoke', '--config.optim.lrr=1e-4'])
  msg = str(e.value)
  assert 'lrr' in msg and 'weight_decay' in msg and 'grad_clip' in msg


def test_cli_override_applies():
  c = cli.parse(['train', '--config=configs/motionagformer.py:xs,smoke', '--config.optim.lr=0.125'])
  assert c.optim.lr == 0.125


def test_unknown_variant_and_model_list_valid_names():
  with pytest.raises(ValueError, match='valid: xs, s, b, l'):
    importlib.import_module('configs.motionagformer').get_config('xxl')
  with pytest.raises(ValueError, match='valid names: .*motionagformer'):
    models.build('not_a_model')


def test_sweep_expands_and_validates(tmp_path):
  runs = sweep.expand('configs/motionagformer.py:smoke')
  assert [r['model.variant'] for r in runs] == ['xs', 's', 'b', 'l']
  cmds = sweep.commands('configs/motionagformer.py:smoke', str(tmp_path), runs)
  assert len(cmds) == 4 and all(c[:2] == ['jaxpose', 'train'] for c in cmds)
  assert '--config.model.variant=s' in cmds[1] and '--config.data.frames=81' in cmds[1]
  with pytest.raises(SystemExit, match='optim'):
    sweep.expand('configs/motionagformer.py:smoke', {'optim.lrr': 1.0})


def test_apply_overrides_rejects_unknown_key():
  c = common.locked(common.get_base_config())
  with pytest.raises(KeyError, match='valid keys here'):
    common.apply_overrides(c, {'train.epochz': 3})
  common.apply_overrides(c, {'train.epochs': 3, 'model.kwargs.depth': 2})
  assert c.train.epochs == 3 and c.model.kwargs.depth == 2


def test_product_and_zipit():
  p = common.product(common.sweep('a', [1, 2]), common.sweep('b', [3, 4]))
  assert p == [{'a': 1, 'b': 3}, {'a': 1, 'b': 4}, {'a': 2, 'b': 3}, {'a': 2, 'b': 4}]
  z = common.zipit(common.sweep('a', [1, 2]), common.sweep('b', [3, 4]))
  assert z == [{'a': 1, 'b': 3}, {'a': 2, 'b': 4}]
  with pytest.raises(ValueError):
    common.zipit(common.sweep('a', [1]), common.sweep('b', [3, 4]))


# Every smoke variant of every paper config (variant-dependent sizes included).
SMOKE_ARGS = {
  'motionagformer': ['xs', 's', 'b', 'l', 'b,data=mpi_inf_3dhp'],
  'mixste': ['243', '27'],
  'convformer': ['243', '27', '243_d512'],
  'motionbert': ['base', 'lite'],
  'ktpformer': ['243', '27'],
  'glagcn': ['243', 'humaneva15_27'],
  'videopose3d': ['b', 's', 'xs'],
  'mpm': ['h36m_f243', 'h36m_f243,pretrain', 'h36m_f27'],
  'hot': ['hot_mixste', 'tpc_mixste', 'hot_motionbert', 'hot_motionagformer'],
  'uao': ['published', 'l5'],
  'd3dp': ['243', '27', 'lifter=motionagformer'],
  'diffpose': ['frame', 'video'],
  'platypose': ['h36m_256', 'h36m'],
  'posynda': ['243', 'teacher'],
  'poseda': ['3dhp', '3dpw', '3dhp,gpa_only'],
  'pmce': ['h36m', 'stage=pose', 'stage=mesh'],
  'dsr': ['r50'],
  'epipolarpose': ['r18', 'r18,teacher', 'r18,ss', 'r18,ss_rt', 'r18,refine', 'r50'],
  'perspose': ['w48', 'w48,nopr,nope'],
}


def test_every_paper_config_has_its_smoke_variants_listed():
  assert sorted(SMOKE_ARGS) == PAPER_CONFIGS


@pytest.mark.parametrize(
  'name, arg', [(n, f'{a},smoke') for n, args in SMOKE_ARGS.items() for a in args]
)
def test_smoke_sizes_declared_in_the_config_fit_the_model(name, arg):
  """The smoke windows the config declares are the windows its tiny model takes."""
  from jaxpose import methods

  c = importlib.import_module(f'configs.{name}').get_config(arg)
  model = methods.get(c.method.name).make_model(c)
  if name == 'posynda':
    model = model.denoiser
  if name == 'poseda':
    model = model.lifter
  if name == 'epipolarpose':
    model = getattr(model, 'net', model)  # mode 'refine': the frozen network
  x = models.example_inputs(model)[0]
  if name == 'pmce':  # windows of T + 2 frames (acceleration context), on the body dataset
    assert x.shape[1] + 2 == c.data.frames and c.data.stride == 1, (x.shape, c.data.frames)
    assert c.data.name == 'deepmimic_smpl' and c.train.total_steps == 4
    return
  if models.input_kind(model) == 'image':  # image models: the crop size, embedded image data
    assert x.shape[1:3] == (c.data.image.size,) * 2, (x.shape, c.data.image.size)
    assert c.data.name.startswith('deepmimic') and c.train.total_steps == 4
    return
  assert x.shape[1] == c.data.frames == c.data.stride, (x.shape, c.data.frames)
  assert c.data.name == 'deepmimic' and c.train.total_steps == 4


@pytest.mark.parametrize('name', ['mpm', 'convformer'])
def test_variant_frame_tables_match_the_models(name):
  """configs/{mpm,convformer}.py keep their own FRAMES tables (no model import)."""
  table = importlib.import_module(f'configs.{name}').FRAMES
  assert table == {v: kw['num_frames'] for v, kw in models.variants(name).items()}


def test_loading_configs_imports_no_jax():
  """Configs are pure data: loading any of them, smoke included, imports neither jax nor flax
  nor jaxpose.models (checked in a fresh interpreter)."""
  import subprocess
  import sys

  code = (
    'import importlib, sys\n'
    f'for name in {PAPER_CONFIGS!r}:\n'
    "  mod = importlib.import_module(f'configs.{name}')\n"
    '  mod.get_config(None)\n'
    "  mod.get_config('smoke')\n"
    "  if hasattr(mod, 'get_sweep'): mod.get_sweep(None)\n"
    "bad = sorted(m for m in ('jax', 'flax', 'jaxpose.models') if m in sys.modules)\n"
    'assert not bad, bad\n'
  )
  repo = CONFIG_DIR.parent
  out = subprocess.run([sys.executable, '-c', code], cwd=repo, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize('name', PAPER_CONFIGS)
def test_every_sweep_run_parses_as_a_train_command_line(name):
  """`jaxpose sweep` launches `jaxpose train` with these flags: each must parse (an override of a
  model.kwargs/method.kwargs key the config does not declare would be rejected at launch)."""
  mod = importlib.import_module(f'configs.{name}')
  if not hasattr(mod, 'get_sweep'):
    pytest.skip('no sweep')
  runs = sweep.expand(f'configs/{name}.py')
  assert runs and all(isinstance(r, dict) for r in runs)


def test_hot_declares_its_variant_pruning_sizes():
  """The declared token_num / layer_index equal the variant's own (the model does not change)."""
  hot = importlib.import_module('configs.hot')
  for variant in hot.VARIANTS:
    c = hot.get_config(variant)
    assert models.build_from_config(c) == models.build('hot', variant)
