"""The model zoo: one row per registered model + variant, cached in `zoo.json`, rendered to markdown.

`jaxpose bench --zoo_markdown` recomputes every row (parameters and MACs from the jaxpr walker, no
throughput, so the numbers are deterministic), writes `jaxpose/bench/zoo.json`, and rewrites the
README between the markers `<!-- zoo:start -->` and `<!-- zoo:end -->`. The README table is a pure
function of zoo.json (`render_markdown`), and tests/bench/test_zoo.py checks README == render(zoo.json)
and zoo.json == the registry, so the table cannot drift from the code unnoticed.

Columns and where they come from:
  * Paper: the model module's docstring (first line up to ':', the venue and year and the arXiv id
    of its `Paper:` paragraph).
  * Frames: T of `jaxpose.models.example_inputs` (one clip); image models show their input size
    (H×W img) and count MACs per image.
  * Params ours: the `params` collection; paper: `PAPER[variant]['params']`.
  * GMACs per clip, Linear/Conv (thop style) and all matmuls (fvcore style); MMACs per output frame
    (Linear/Conv). For models with fewer output than input frames (VideoPose3D) the per-frame cost is
    the marginal cost over a long sequence, marked †.
  * Parity: `yes (n)` when `tests/parity/test_<name>_parity.py` exists and n fixture files
    `<name>__*.npz` were found in the parity directory ($JAXPOSE_PARITY_DIR, default
    ../shared/fixtures/parity) when the table was generated; `test only` when the test exists but no
    fixture was found; `no` without a parity test.
  * Torch import: `yes` when the module defines `from_torch` (official checkpoint conversion).
  * Config: `configs/<name>.py` when it exists.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
ZOO_JSON = pathlib.Path(__file__).with_name('zoo.json')
README = REPO / 'README.md'
START, END = '<!-- zoo:start -->', '<!-- zoo:end -->'

_VENUE = re.compile(
  r'\b(CVPR|ICCV|ECCV|WACV|AAAI|IJCAI|NeurIPS|ICLR|ICML|BMVC|3DV|ACM ?MM|IEEE TMM|TMM|TPAMI|IJCV|'
  r'TIP|TCSVT)\b[^,\n]{0,12}?((?:19|20)\d\d)'
)
_ARXIV = re.compile(r'arXiv[:\s]*(\d{4}\.\d{4,5})')


def parity_dir() -> pathlib.Path:
  """Where parity fixtures live (the same rule as tests/parity/_fixtures.py)."""
  default = REPO.parent / 'shared' / 'fixtures' / 'parity'
  return pathlib.Path(os.environ.get('JAXPOSE_PARITY_DIR', default))


def parity_test_exists(name: str) -> bool:
  return (REPO / 'tests' / 'parity' / f'test_{name}_parity.py').exists()


def parity_fixture_count(name: str) -> int:
  d = parity_dir()
  return len(sorted(d.glob(f'{name}__*.npz'))) if d.is_dir() else 0


def paper_info(module: Any) -> dict[str, str]:
  """{'title', 'venue', 'arxiv'} parsed from a model module's docstring ('' when absent)."""
  doc = (module.__doc__ or '').strip()
  first = doc.splitlines()[0] if doc else module.__name__.rsplit('.', 1)[-1]
  title = re.split(r':| — | - ', first, maxsplit=1)[0].strip()
  paper_par = doc.split('Paper:', 1)[1].split('\n\n', 1)[0] if 'Paper:' in doc else doc
  venue = _VENUE.search(paper_par)
  arxiv = _ARXIV.search(doc)
  return {
    'title': title,
    'venue': f'{venue.group(1)} {venue.group(2)}' if venue else '',
    'arxiv': arxiv.group(1) if arxiv else '',
  }


def number(entry: Mapping[str, Any] | None, key: str) -> float | None:
  """entry[key] if it is a real number, else None (PAPER dicts also hold strings)."""
  if not entry:
    return None
  v = entry.get(key)
  if isinstance(v, bool) or not isinstance(v, int | float):
    return None
  return float(v)


def rel_diff(ours: float | None, paper: float | None) -> float | None:
  if ours is None or not paper:
    return None
  return (ours - paper) / paper


def model_row(name: str, variant: str | None, *, xla: bool = False) -> dict[str, Any]:
  """Registry facts, our counts (batch 1, inference) and the paper's numbers for one variant."""
  from jaxpose import models
  from jaxpose.bench.flops import model_flops

  mod = models.get_module(name)
  model = models.build(name, variant)
  row: dict[str, Any] = {'model': name, 'variant': variant or ''}
  row.update(model_flops(model, xla=xla))
  paper = dict(getattr(mod, 'PAPER', {}) or {}).get(variant or '', {})
  row['paper_params'] = number(paper, 'params')
  row['paper_frames'] = number(paper, 'frames')
  row['paper_macs_linear'] = number(paper, 'macs_linear')
  row['paper_macs_all'] = number(paper, 'macs_all')
  row['paper_macs_per_frame'] = number(paper, 'macs_per_frame')
  ours_pf = row.get('macs_linear_per_frame_stream', row['macs_linear_per_frame'])
  row['rel_params'] = rel_diff(row['params'], row['paper_params'])
  row['rel_macs_linear'] = rel_diff(row['macs_linear'], row['paper_macs_linear'])
  row['rel_macs_all'] = rel_diff(row['macs_all'], row['paper_macs_all'])
  row['rel_macs_per_frame'] = rel_diff(ours_pf, row['paper_macs_per_frame'])
  return row


def registry_facts(name: str) -> dict[str, Any]:
  """Per-model zoo columns that do not depend on the variant."""
  from jaxpose import models

  mod = models.get_module(name)
  config = REPO / 'configs' / f'{name}.py'
  return {
    **paper_info(mod),
    'parity_test': parity_test_exists(name),
    'parity_fixtures': parity_fixture_count(name),
    'torch_import': callable(getattr(mod, 'from_torch', None)),
    'config': f'configs/{name}.py' if config.exists() else '',
  }


def all_specs() -> list[tuple[str, str | None]]:
  """Every registered (model, variant); a model without VARIANTS contributes (name, None)."""
  from jaxpose import models

  out = []
  for name in models.list_models():
    vs = list(models.variants(name)) or [None]
    out += [(name, v) for v in vs]
  return out


_ZOO_KEYS = (
  'params',
  'input',
  'frames_in',
  'frames_out',
  'macs_linear',
  'macs_all',
  'macs_linear_per_frame',
  'macs_all_per_frame',
  'macs_linear_per_frame_stream',
  'paper_params',
  'paper_macs_linear',
  'paper_macs_all',
  'paper_macs_per_frame',
)


def build_zoo(
  specs: Iterable[tuple[str, str | None]] | None = None,
  rows: Iterable[Mapping[str, Any]] | None = None,
  progress: bool = False,
) -> dict[str, Any]:
  """The zoo: {'models': {name: facts}, 'rows': [per-variant counts]}, in registry order.

  Args:
    specs: (model, variant) pairs to compute; default every registered one.
    rows: already computed `model_row`s (e.g. from a bench run) to reuse instead of recomputing.
    progress: show a tqdm bar.
  """
  specs = list(specs) if specs is not None else all_specs()
  known = {(r['model'], r['variant']): r for r in rows or ()}
  it = specs
  if progress:
    from tqdm import tqdm

    it = tqdm(specs, desc='zoo', unit='model')
  out_rows, facts = [], {}
  for name, variant in it:
    r = known.get((name, variant or '')) or model_row(name, variant)
    out_rows.append({'model': name, 'variant': variant or '', **{k: r.get(k) for k in _ZOO_KEYS}})
    facts.setdefault(name, registry_facts(name))
  return {'models': facts, 'rows': out_rows}


def merge_zoo(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
  """`old` with `new`'s rows and facts replacing the same models, in registry order."""
  from jaxpose import models

  valid = set(models.list_models())
  replaced = set(new['models'])
  facts = {k: v for k, v in old.get('models', {}).items() if k in valid and k not in replaced}
  facts.update(new['models'])
  rows = [r for r in old.get('rows', []) if r['model'] in facts and r['model'] not in replaced]
  rows += list(new['rows'])
  order = {spec: i for i, spec in enumerate((n, v or '') for n, v in all_specs())}
  rows.sort(key=lambda r: order.get((r['model'], r['variant']), len(order)))
  return {'models': {k: facts[k] for k in sorted(facts)}, 'rows': rows}


def load_zoo(path: pathlib.Path | str = ZOO_JSON) -> dict[str, Any]:
  path = pathlib.Path(path)
  if not path.exists():
    return {'models': {}, 'rows': []}
  return json.loads(path.read_text())


def save_zoo(zoo: Mapping[str, Any], path: pathlib.Path | str = ZOO_JSON) -> None:
  pathlib.Path(path).write_text(json.dumps(zoo, indent=1, sort_keys=False) + '\n')


def _m(x: float | None, scale: float, digits: int = 2) -> str:
  return '–' if x is None else f'{x / scale:.{digits}f}'


def _parity(f: Mapping[str, Any]) -> str:
  if not f.get('parity_test'):
    return 'no'
  n = f.get('parity_fixtures', 0)
  return f'yes ({n})' if n else 'test only'


def _paper_cell(f: Mapping[str, Any]) -> str:
  title = f.get('title') or '?'
  cell = f'[{title}](https://arxiv.org/abs/{f["arxiv"]})' if f.get('arxiv') else title
  return f'{cell} ({f["venue"]})' if f.get('venue') else cell


def _frames_cell(r: Mapping[str, Any]) -> str:
  """T for lifters; the input size for image models ('256×256 img')."""
  inp = str(r.get('input') or '')
  if inp.endswith(' image'):
    h, w = inp.split('x')[:2]
    return f'{h}×{w} img'
  return str(r['frames_in'])


def render_markdown(zoo: Mapping[str, Any]) -> str:
  """The README zoo table (deterministic: a function of `zoo` only)."""
  head = (
    '| Model | Variant | Paper | Frames | Params ours (M) | Params paper (M) '
    '| GMACs/clip Linear | GMACs/clip all | MMACs/frame Linear | Parity | Torch import | Config |'
  )
  lines = [head, '|' + '---|' * 12]
  stream = False
  for r in zoo['rows']:
    f = zoo['models'].get(r['model'], {})
    per_frame = r.get('macs_linear_per_frame_stream')
    mark = ''
    if per_frame is not None:
      stream, mark = True, ' †'
    else:
      per_frame = r['macs_linear_per_frame']
    cfg = f'[{f["config"]}]({f["config"]})' if f.get('config') else '–'
    cells = [
      r['model'],
      r['variant'] or '–',
      _paper_cell(f),
      _frames_cell(r),
      _m(r['params'], 1e6),
      _m(r.get('paper_params'), 1e6),
      _m(r['macs_linear'], 1e9),
      _m(r['macs_all'], 1e9),
      _m(per_frame, 1e6, 1) + mark,
      _parity(f),
      'yes' if f.get('torch_import') else 'no',
      cfg,
    ]
    lines.append('| ' + ' | '.join(cells) + ' |')
  notes = [
    'MACs at batch 1 in inference mode from the jaxpr walker (`jaxpose/bench/flops.py`). '
    '"Linear" counts Linear/Dense and Conv layers only (the thop/torchprofile convention most '
    'papers report); "all" adds the matmuls between activations (attention QKᵀ and AV, '
    'similarity graphs), the fvcore convention. XLA FLOPs would be about 2× "all".',
    'Parity: `yes (n)` = `tests/parity/test_<model>_parity.py` runs against n official-code '
    'fixtures; `test only` = no fixture was found when the table was generated.',
  ]
  if stream:
    notes.append(
      '† per output frame when the model slides over a long sequence (marginal cost), the '
      "paper's regime; per clip = one receptive-field window."
    )
  notes.append('Regenerate with `jaxpose bench --zoo_markdown`.')
  return '\n'.join(lines) + '\n\n' + '\n\n'.join(notes) + '\n'


def replace_between_markers(text: str, body: str) -> str:
  """`text` with everything between START and END replaced by `body`; ValueError without markers."""
  i, j = text.find(START), text.find(END)
  if i < 0 or j < i:
    raise ValueError(f'README has no {START} ... {END} section')
  return text[: i + len(START)] + '\n' + body + text[j:]


def readme_section(text: str) -> str | None:
  """The text between the markers (None without them)."""
  i, j = text.find(START), text.find(END)
  if i < 0 or j < i:
    return None
  return text[i + len(START) : j].lstrip('\n')


def update_readme(markdown: str, path: pathlib.Path | str = README) -> bool:
  """Rewrites the README's zoo section; False (untouched) when the file or markers are missing."""
  path = pathlib.Path(path)
  if not path.exists():
    return False
  text = path.read_text()
  try:
    new = replace_between_markers(text, markdown)
  except ValueError:
    return False
  if new != text:
    path.write_text(new)
  return True
