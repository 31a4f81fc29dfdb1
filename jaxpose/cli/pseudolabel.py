"""`jaxpose pseudolabel`: EpipolarPose's offline pseudo-labels (teacher 2D -> epipolar pseudo-3D).

  jaxpose pseudolabel --config configs/epipolarpose.py:r18,ss \\
      --config.method.kwargs.teacher=runs/teacher --config.method.kwargs.labels=runs/ss_labels.npz

Runs the 2D teacher (a `jaxpose train` workdir of the same config in mode 'teacher', its best
checkpoint, else its latest) over every (frame, camera) of data.train_split, builds the pseudo-3D
of every camera pair (mode 'ss': F -> E -> R, t up to scale -> polynomial triangulation, no
extrinsics; mode 'ss_rt': the known extrinsics), writes method.kwargs.labels, and prints the
label quality against the ground truth (N-MPJPE, P-MPJPE, rotation error per camera pair) as a
table and one JSON line. Training in the same mode then reads the file (`jaxpose train` with the
same --config flags). See `jaxpose.methods.epipolarpose_labels`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from jaxpose.cli import train as train_cli


def format_quality(q: dict[str, Any]) -> str:
  """The per-pair table of a labels file's quality report (degrees, millimetres)."""
  cols = ('rot_err_deg', 't_dir_err_deg', 'inlier_ratio', 'n_mpjpe_mm', 'p_mpjpe_mm', 'mpjpe_mm')
  head = 'pair'.ljust(8) + ''.join(f'{c:>15}' for c in cols) + f'{"valid":>8}'
  rows = [head]
  for r in q['per_pair']:
    vals = ''.join(f'{r[c]:>15.2f}' if c in r else f'{"-":>15}' for c in cols)
    rows.append(f'{r["pair"][0]}-{r["pair"][1]}'.ljust(8) + vals + f'{r["valid"]:>8}')
  overall = {k: v for k, v in q.items() if k != 'per_pair'}
  rows.append('all     ' + ', '.join(f'{k} {v:.3f}' for k, v in overall.items()))
  return '\n'.join(rows)


def main(argv: Sequence[str]) -> int:
  """`jaxpose pseudolabel`; argv[0] is the command."""
  config = train_cli.parse_flags(argv).config
  from jaxpose import methods
  from jaxpose.data import build, image_pipeline
  from jaxpose.methods import epipolarpose as ep
  from jaxpose.methods import epipolarpose_labels as labels_lib
  from jaxpose.train import checkpoint

  if config.method.name != 'epipolarpose':
    raise SystemExit(
      f'jaxpose pseudolabel: method.name must be epipolarpose, got {config.method.name!r}'
    )
  s = ep.settings(config)
  if s['mode'] not in ('ss', 'ss_rt'):
    raise SystemExit(f"jaxpose pseudolabel: mode must be 'ss' or 'ss_rt', got {s['mode']!r}")
  if not s['teacher'] or not s['labels']:
    raise SystemExit(
      'jaxpose pseudolabel: set --config.method.kwargs.teacher=<teacher workdir> and '
      '--config.method.kwargs.labels=<output .npz>'
    )
  build.ensure_built(config.data.name, config.data.data_dir or None, config.data.config or None)
  model = methods.get('epipolarpose').make_model(config)
  variables = checkpoint.load_params(s['teacher'])
  teacher = labels_lib.teacher_keypoints(model, variables, config.data)
  root = ep._root(config)
  labels = labels_lib.make_pseudo_labels(teacher, s['mode'], s, root=root, seed=int(config.seed))
  store = image_pipeline.get_store(config.data, config.data.train_split)
  meta = {
    **labels_lib.label_meta(config, store),
    'teacher': str(s['teacher']),
    'settings': {k: v for k, v in s.items() if k.startswith('pseudo_')},
  }
  path = labels_lib.save_labels(s['labels'], labels, meta)
  print(format_quality(labels['quality']))
  print(json.dumps({'labels': str(path), **labels['quality']}, default=float))
  return 0
