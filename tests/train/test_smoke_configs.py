"""Each paper config's `smoke` mode trains a few steps and evaluates through the default trainer,
on the embedded deepmimic data (built once per session). PoSynDA's smoke mode (two domains,
teacher, resume) is tested in tests/methods/test_posynda_engine.py."""

import importlib

import numpy as np
import pytest

from jaxpose.train import loop

# CI keeps one config per engine path (plain lifter, method-built model with adapt_init, HoT,
# UAO's predict_batch, D3DP's eval_metrics); the configs whose models the contract tests already
# train (tests/models) run with `-m slow`.
_slow = lambda spec: pytest.param(spec, marks=pytest.mark.slow)
SMOKE = [
  'mixste:smoke',
  _slow('motionbert:lite,smoke'),
  _slow('ktpformer:smoke'),
  _slow('glagcn:smoke'),
  _slow('mpm:smoke'),
  'mpm:pretrain,smoke',
  'hot:hot_mixste,smoke',
  'uao:smoke',
  'd3dp:smoke',
  _slow('dsr:smoke'),  # image method; builds deepmimic_smpl_render/tiny; ~2 min (render compile)
]


@pytest.mark.parametrize('spec', SMOKE)
def test_smoke_config_trains_and_evaluates(spec, deepmimic_dir, tmp_path):
  name, arg = spec.split(':')
  c = importlib.import_module(f'configs.{name}').get_config(arg)
  c.data.data_dir = deepmimic_dir
  c.train.update(total_steps=2, ckpt_every=2, log_every=1)
  c.eval.max_batches = 1
  res = loop.run(c, tmp_path)
  assert res['num_frames'] > 0 and np.isfinite(res['mpjpe_mm'])
