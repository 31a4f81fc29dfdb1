"""EpipolarPose through the default trainer on deepmimic_render/tiny: supervised, the 2D teacher,
`jaxpose pseudolabel`, self-supervised on the pseudo-labels, and the refinement unit (slow: each
run compiles a tiny ResNet-18)."""

import json

import numpy as np
import pytest

from jaxpose.cli import pseudolabel
from jaxpose.cli import train as train_cli
from jaxpose.train import loop

CONFIG = 'configs/epipolarpose.py:r18,smoke'


def _argv(cmd, mode, data_dir, *extra):
  return [cmd, f'--config={CONFIG},{mode}', f'--config.data.data_dir={data_dir}', *extra]


def _losses(workdir):
  rows = [json.loads(x) for x in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return [r for r in rows if 'loss' in r]


EVAL_KEYS = {'mpjpe_mm', 'p_mpjpe_mm', 'n_mpjpe_mm', 'pss4', 'pss8', 'err2d_px'}


@pytest.mark.slow
def test_supervised_then_refine(render_dir, tmp_path):
  sup = tmp_path / 'sup'
  res = loop.run(train_cli.parse(_argv('train', 'sup', render_dir)), str(sup))
  assert EVAL_KEYS <= set(res) and res['num_frames'] == 12, res.keys()
  assert all(np.isfinite(res[k]) for k in EVAL_KEYS)
  assert 0 <= res['pss4'] <= 1 and res['mpjpe_mm'] > 0
  assert all(r['loss/z'] > 0 for r in _losses(sup))
  cfg = train_cli.parse(_argv('train', 'refine', render_dir, f'--config.init_from.path={sup}'))
  res = loop.run(cfg, str(tmp_path / 'refine'))
  assert np.isfinite(res['mpjpe_mm']) and {'loss/p1', 'loss/p2'} <= set(
    _losses(tmp_path / 'refine')[0]
  )


@pytest.mark.slow
def test_teacher_pseudolabels_self_supervised(render_dir, tmp_path, capsys):
  teacher = tmp_path / 'teacher'
  res = loop.run(train_cli.parse(_argv('train', 'teacher', render_dir)), str(teacher))
  assert all(r['loss/z'] == 0 for r in _losses(teacher))  # 2D only
  assert np.isfinite(res['err2d_px'])
  labels = tmp_path / 'ss.npz'
  files = [f'--config.method.kwargs.teacher={teacher}', f'--config.method.kwargs.labels={labels}']
  assert pseudolabel.main(_argv('pseudolabel', 'ss', render_dir, *files)) == 0
  report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert report['labels'] == str(labels) and len(report['per_pair']) == 6
  with np.load(labels) as z:
    assert z['pose3d'].shape == (6, 6, 2, 17, 3)  # 6 train records, 6 camera pairs of 4 views
  init = f'--config.init_from.path={teacher}'
  res = loop.run(
    train_cli.parse(_argv('train', 'ss', render_dir, *files, init)), str(tmp_path / 'ss')
  )
  assert EVAL_KEYS <= set(res) and np.isfinite(res['mpjpe_mm'])
  rows = _losses(tmp_path / 'ss')
  assert rows and all(np.isfinite(r['loss']) and r['label_weight'] > 0 for r in rows)
  with pytest.raises(SystemExit, match="mode must be 'ss' or 'ss_rt'"):
    pseudolabel.main(_argv('pseudolabel', 'sup', render_dir, *files))
