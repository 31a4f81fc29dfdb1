"""Imports run one way: geometry <- body, render <- data, metrics <- models <- methods <- train, eval
<- cli (README "Layout").

Every module under jaxpose/ is parsed with `ast` (nothing is imported); each `import` and
`from ... import`, module level or inside a function, is an edge from the module's package to the
imported one. A package may import only packages of strictly lower layers, and the package graph
must be acyclic. `jaxpose.convert.torch_utils` (state-dict mapping, used by every model file) is a
node of its own below the models; `jaxpose.convert` itself (`load_official`, which dispatches to
the models) sits above them. Only jaxpose/cli/ may import the top-level `configs` package.
"""

from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

# Lowest first. A package may import the packages of the layers below its own.
LAYERS: list[tuple[str, ...]] = [
  ('types',),  # shared type aliases
  ('sharding', 'convert.torch_utils'),  # utilities for every layer
  ('geometry',),
  ('body', 'render'),  # the body model and the rasteriser build on geometry
  ('data', 'metrics'),
  ('losses',),  # per-sample loss terms over the metrics
  ('models',),
  ('convert',),  # load_official: reads a checkpoint, dispatches to models.<name>.from_torch
  ('methods',),
  ('eval', 'bench', 'viz'),
  ('train',),
  ('cli',),
]
# Modules that form a node of their own instead of belonging to their package.
OWN_NODES = ('convert.torch_utils',)
# Top-level packages outside jaxpose/ that only some jaxpose packages may import.
EXTERNAL = {'configs': ('cli',)}


def _node(parts: tuple[str, ...]) -> str:
  """jaxpose sub-module path parts (without 'jaxpose') -> graph node."""
  dotted = '.'.join(parts)
  for own in OWN_NODES:
    if dotted == own or dotted.startswith(own + '.'):
      return own
  return parts[0].removesuffix('.py') if parts else ''


def _module_parts(path: pathlib.Path, root: pathlib.Path) -> tuple[str, ...]:
  parts = path.relative_to(root / 'jaxpose').with_suffix('').parts
  return parts[:-1] if parts[-1] == '__init__' else parts


def _targets(node: ast.AST, root: pathlib.Path) -> list[tuple[str, ...]]:
  """jaxpose module paths (parts after 'jaxpose') and external packages an import statement names."""
  names: list[str] = []
  if isinstance(node, ast.Import):
    names = [a.name for a in node.names]
  elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
    # `from jaxpose.convert import torch_utils` imports the submodule (a node of its own).
    base = root / pathlib.Path(*node.module.split('.'))
    subs = [
      f'{node.module}.{a.name}'
      for a in node.names
      if (base / f'{a.name}.py').is_file() or (base / a.name / '__init__.py').is_file()
    ]
    names = subs if len(subs) == len(node.names) else [node.module, *subs]
  out = []
  for name in names:
    parts = tuple(name.split('.'))
    if parts[0] == 'jaxpose' and len(parts) > 1:
      out.append(parts[1:])
    elif parts[0] in EXTERNAL:
      out.append(('<external>', parts[0]))
  return out


def import_edges(root: pathlib.Path = REPO) -> dict[tuple[str, str], set[str]]:
  """{(importing node, imported node): {'module:line', ...}} over every module of root/jaxpose."""
  edges: dict[tuple[str, str], set[str]] = defaultdict(set)
  for path in sorted((root / 'jaxpose').rglob('*.py')):
    parts = _module_parts(path, root)
    if not parts:  # jaxpose/__init__.py
      continue
    src = _node(parts)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
      for tgt in _targets(node, root):
        dst = tgt[1] if tgt[0] == '<external>' else _node(tgt)
        if dst and dst != src:
          edges[(src, dst)].add(f'jaxpose/{"/".join(parts)}:{node.lineno}')
  return edges


def _level(node: str) -> int | None:
  return next((i for i, layer in enumerate(LAYERS) if node in layer), None)


def violations(edges: dict[tuple[str, str], set[str]]) -> list[str]:
  """Upward or sideways imports, imports of packages in no layer, and forbidden externals."""
  out = []
  for (src, dst), where in sorted(edges.items()):
    at = ', '.join(sorted(where)[:3])
    if dst in EXTERNAL:
      if src not in EXTERNAL[dst]:
        out.append(f'{src} -> {dst} (only {", ".join(EXTERNAL[dst])} may import it): {at}')
      continue
    ls, ld = _level(src), _level(dst)
    if ls is None or ld is None:
      unknown = src if ls is None else dst
      out.append(f'{src} -> {dst}: package {unknown!r} is in no layer of LAYERS: {at}')
    elif ld >= ls:
      out.append(f'{src} (layer {ls}) -> {dst} (layer {ld}) is not a downward import: {at}')
  return out


def cycles(edges: dict[tuple[str, str], set[str]]) -> list[list[str]]:
  """Every elementary cycle's node list found by a DFS over the package graph (empty if none)."""
  graph: dict[str, set[str]] = defaultdict(set)
  for src, dst in edges:
    if dst not in EXTERNAL:
      graph[src].add(dst)
  found, state = [], {}

  def visit(n: str, stack: list[str]) -> None:
    state[n] = 'open'
    for m in sorted(graph[n]):
      if state.get(m) == 'open':
        found.append(stack[stack.index(m) :] + [m])
      elif m not in state:
        visit(m, [*stack, m])
    state[n] = 'done'

  for n in sorted(graph):
    if n not in state:
      visit(n, [n])
  return found


def package_graph(edges: dict[tuple[str, str], set[str]]) -> str:
  """One line per package: 'pkg -> imported, ...', by layer (for reports)."""
  by_src: dict[str, list[str]] = defaultdict(list)
  for src, dst in sorted(edges):
    by_src[src].append(dst)
  order = [n for layer in LAYERS for n in layer]
  return '\n'.join(f'{n} -> {", ".join(by_src[n]) or "-"}' for n in order if n in by_src)


def test_imports_run_one_way_and_have_no_cycle():
  edges = import_edges()
  assert edges, 'no import found: wrong repository root?'
  assert not violations(edges), '\n'.join(violations(edges))
  assert not cycles(edges), cycles(edges)


def test_configs_import_no_jaxpose():
  """configs/ is pure data (tests/configs checks that loading them imports no jax)."""
  bad = []
  for path in sorted((REPO / 'configs').rglob('*.py')):
    for node in ast.walk(ast.parse(path.read_text())):
      for tgt in _targets(node, REPO):
        if tgt[0] != '<external>':
          bad.append(f'{path.relative_to(REPO)}:{node.lineno} imports jaxpose.{".".join(tgt)}')
  assert not bad, '\n'.join(bad)


def _write(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
  for rel, text in {'jaxpose/__init__.py': '', **files}.items():
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)
  return root


def test_the_check_fails_on_an_upward_import_and_a_cycle(tmp_path):
  """The checker itself can fail: a synthetic tree with models -> methods (inside a function, as
  the lazy imports were) and methods -> models is a cycle with an upward edge."""
  root = _write(
    tmp_path,
    {
      'jaxpose/models/__init__.py': '',
      'jaxpose/models/net.py': 'def f():\n  from jaxpose.methods import loss\n',
      'jaxpose/methods/__init__.py': '',
      'jaxpose/methods/loss.py': 'from jaxpose.models import net\n',
      'jaxpose/eval/__init__.py': 'from jaxpose import train\n',
      'jaxpose/train/__init__.py': '',
      'jaxpose/data/x.py': 'import configs.common\n',
    },
  )
  edges = import_edges(root)
  assert ('models', 'methods') in edges and ('methods', 'models') in edges
  msgs = violations(edges)
  assert any(m.startswith('models (layer 6) -> methods (layer 8)') for m in msgs), msgs
  assert any(m.startswith('eval (layer 9) -> train (layer 10)') for m in msgs), msgs
  assert any(m.startswith('data -> configs (only cli may import it)') for m in msgs), msgs
  assert ['methods', 'models', 'methods'] in cycles(edges) or ['models', 'methods', 'models'] in (
    cycles(edges)
  )


@pytest.mark.parametrize(
  'src, imp, ok',
  [
    ('models/m.py', 'from jaxpose.convert.torch_utils import linear', True),
    ('models/m.py', 'from jaxpose.convert import torch_utils', True),
    ('models/m.py', 'from jaxpose.convert import load_official', False),
    ('methods/m.py', 'from jaxpose.models.layers import lora', True),
    ('data/m.py', 'from jaxpose.models import build', False),
    ('geometry/m.py', 'import jaxpose.sharding', True),
    ('newpkg/m.py', 'from jaxpose.geometry import camera', False),
  ],
)
def test_edge_rules(tmp_path, src, imp, ok):
  files = {
    f'jaxpose/{src}': imp + '\n',
    'jaxpose/convert/__init__.py': '',
    'jaxpose/sharding.py': '',
  }
  files['jaxpose/convert/torch_utils.py'] = ''
  msgs = violations(import_edges(_write(tmp_path, files)))
  assert (not msgs) == ok, msgs
