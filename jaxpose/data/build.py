"""Building the TFDS datasets (no TensorFlow): `build`, `ensure_built`, data_dir resolution.

  from jaxpose.data import build
  build.build('h36m', config='cpn_ft_h36m_dbb', manual_dir='~/h36m_files', data_dir='~/data')
  build.ensure_built('deepmimic', data_dir)   # embedded datasets (deepmimic, deepmimic_smpl):
                                              # built on first use

Builds go through TFDS' `download_and_prepare` with array_record output. TFDS writes into an
`incomplete.*` directory next to the final one and renames it only when every split is written, so
an interrupted or failed build leaves nothing `tfds.data_source` accepts (tests/tfds_builders check
this). Each builder also reads and validates all its input files before writing anything.
"""

from __future__ import annotations

import contextlib
import os
import pathlib

from jaxpose.data.io import ManualDirError

ENV_DATA_DIR = 'JAXPOSE_DATA_DIR'


class NotBuiltError(FileNotFoundError):
  """The dataset (config) has not been built in data_dir; the message has the build command."""


class DataWarning(UserWarning):
  """Input files a builder accepts but that hold something outside its protocol (e.g. an h36m
  subject in no split); `jaxpose data build --strict` makes these errors."""


def default_data_dir() -> str:
  """$JAXPOSE_DATA_DIR, else ~/jaxpose_datasets."""
  return os.environ.get(ENV_DATA_DIR) or str(pathlib.Path.home() / 'jaxpose_datasets')


def resolve_data_dir(data_dir: str | os.PathLike | None) -> str:
  """'' or None -> `default_data_dir()`; '~' is expanded."""
  return str(pathlib.Path(os.fspath(data_dir) if data_dir else default_data_dir()).expanduser())


def _tfds():
  import tensorflow_datasets as tfds

  import tfds_builders  # noqa: F401  (registers the builders)

  return tfds


def names() -> tuple[str, ...]:
  """The dataset names of tfds_builders (h36m, mpi_inf_3dhp, humaneva, pw3d, deepmimic, ...)."""
  import tfds_builders

  return tfds_builders.NAMES


def builder_class(name: str):
  """The registered builder class of `name` (ValueError listing the valid names)."""
  tfds = _tfds()
  if name not in names():
    raise ValueError(f'unknown dataset {name!r}; valid: {", ".join(names())}')
  return tfds.builder_cls(name)


def config_names(name: str) -> tuple[str, ...]:
  """Builder config names of a dataset, default first."""
  cls = builder_class(name)
  cfgs = [c.name for c in cls.BUILDER_CONFIGS]
  default = cls.DEFAULT_CONFIG_NAME or cfgs[0]
  return (default, *[c for c in cfgs if c != default])


def dataset_ref(name: str, config: str | None = None) -> str:
  """'name/config' with the default config filled in ('' or None -> default)."""
  cfgs = config_names(name)
  config = config or cfgs[0]
  if config not in cfgs:
    raise ValueError(f'dataset {name!r} has no config {config!r}; valid: {", ".join(cfgs)}')
  return f'{name}/{config}'


@contextlib.contextmanager
def _quiet_absl():
  """Silences TFDS' 'Variant folder ... has no dataset_info.json' warning for unbuilt datasets."""
  from absl import logging

  level = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)
  try:
    yield
  finally:
    logging.set_verbosity(level)


def get_builder(name: str, config: str | None = None, data_dir: str | None = None, **kwargs):
  """The TFDS builder of name/config over data_dir (`kwargs`: builder options, e.g. strict)."""
  tfds = _tfds()
  with _quiet_absl():
    return tfds.builder(dataset_ref(name, config), data_dir=resolve_data_dir(data_dir), **kwargs)


def describe(name: str) -> str:
  """What `jaxpose data build <name>` needs: its configs and which files go in --manual_dir."""
  import textwrap

  cls = builder_class(name)
  cfgs = {c.name: c.description for c in cls.BUILDER_CONFIGS}
  lines = [f'dataset {name} (version {cls.VERSION}); configs (--config, first = default):']
  lines += [f'  {c:<24} {cfgs.get(c) or ""}'.rstrip() for c in config_names(name)]
  if cls.NEEDS_MANUAL_DIR:
    lines += [
      'files (--manual_dir):',
      textwrap.indent(textwrap.dedent(cls.MANUAL_DOWNLOAD_INSTRUCTIONS).strip(), '  '),
    ]
  else:
    lines.append('files: none (--manual_dir is not needed; the sources ship with jaxpose)')
  if getattr(cls, 'SUPPORTS_STRICT', False):
    lines.append('--strict: refuse names outside the protocol (default: warn and go on)')
  lines.append(
    f'output: <data_dir>/{name}/<config>/{cls.VERSION}/ (array_record shards + dataset_info.json)'
  )
  return '\n'.join(lines)


def build_command(name: str, config: str | None = None, data_dir: str | None = None) -> str:
  """The shell command that builds name/config into data_dir."""
  ref = dataset_ref(name, config)
  cfg = ref.split('/', 1)[1]
  manual = (
    '' if not builder_class(name).NEEDS_MANUAL_DIR else ' --manual_dir <folder with the files>'
  )
  return f'jaxpose data build {name} --config {cfg}{manual} --data_dir {resolve_data_dir(data_dir)}'


def version_dir(name: str, config: str | None = None, data_dir: str | None = None) -> pathlib.Path:
  """data_dir/name/config/version: where a complete build lives."""
  version = str(builder_class(name).VERSION)
  return pathlib.Path(resolve_data_dir(data_dir)) / dataset_ref(name, config) / version


def is_built(name: str, config: str | None = None, data_dir: str | None = None) -> bool:
  """Whether a complete build of name/config exists in data_dir (TFDS writes dataset_info.json
  last, inside the incomplete directory that is renamed on success)."""
  return (version_dir(name, config, data_dir) / 'dataset_info.json').exists()


def build(
  name: str,
  config: str | None = None,
  manual_dir: str | os.PathLike | None = None,
  data_dir: str | os.PathLike | None = None,
  overwrite: bool = False,
  strict: bool = False,
) -> pathlib.Path:
  """Builds name/config (config 'all': every config) into data_dir.

  Args:
    name: dataset (h36m, mpi_inf_3dhp, humaneva, pw3d, deepmimic, deepmimic_smpl, ...).
    config: builder config; None or '' = the default one, 'all' = every config.
    manual_dir: folder with the official files (not needed for deepmimic, deepmimic_smpl).
    data_dir: output root ('' / None -> $JAXPOSE_DATA_DIR or ~/jaxpose_datasets).
    overwrite: rebuild even if a complete build exists.
    strict: refuse input names outside the protocol instead of warning (`DataWarning`); only
      builders with SUPPORTS_STRICT (h36m) take it.

  Returns:
    The version directory of the (last) built config.

  Raises:
    ManualDirError: manual_dir missing for a dataset that needs one (message has the instructions).
    jaxpose.data.io.DataFormatError: an input file has the wrong structure, shape or values.
  """
  tfds = _tfds()
  if config == 'all':
    paths = [build(name, c, manual_dir, data_dir, overwrite, strict) for c in config_names(name)]
    return paths[-1]
  cls = builder_class(name)
  if strict and not getattr(cls, 'SUPPORTS_STRICT', False):
    having = [n for n in names() if getattr(builder_class(n), 'SUPPORTS_STRICT', False)]
    raise ValueError(f'dataset {name!r} has no --strict checks (datasets with them: {having})')
  data_dir = resolve_data_dir(data_dir)
  if cls.NEEDS_MANUAL_DIR:
    if not manual_dir:
      raise ManualDirError(
        f'dataset {name!r} needs --manual_dir.\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}'
      )
    manual_dir = pathlib.Path(os.fspath(manual_dir)).expanduser()
    if not manual_dir.is_dir():
      raise ManualDirError(
        f'manual_dir {manual_dir} does not exist.\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}'
      )
    if not any(manual_dir.iterdir()):
      raise ManualDirError(f'manual_dir {manual_dir} is empty.\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}')
  b = get_builder(name, config, data_dir, **({'strict': True} if strict else {}))
  mode = tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
  if overwrite:
    mode = tfds.download.GenerateMode.FORCE_REDOWNLOAD
  dl = tfds.download.DownloadConfig(
    manual_dir=os.fspath(manual_dir) if manual_dir else None, download_mode=mode
  )
  b.download_and_prepare(download_config=dl, file_format='array_record')
  return pathlib.Path(os.fspath(b.data_dir))


def ensure_built(
  name: str, data_dir: str | os.PathLike | None = None, config: str | None = None
) -> pathlib.Path:
  """Builds an embedded dataset (deepmimic, deepmimic_smpl) if needed; checks a manual one is built.

  Returns:
    The dataset's version directory.

  Raises:
    NotBuiltError: a manual-download dataset is not built; the message has the build command.
  """
  if is_built(name, config, data_dir):
    return version_dir(name, config, data_dir)
  if builder_class(name).NEEDS_MANUAL_DIR:
    raise NotBuiltError(
      f'dataset {dataset_ref(name, config)} is not built in '
      f'{resolve_data_dir(data_dir)}; build it with:\n  '
      f'{build_command(name, config, data_dir)}'
    )
  try:
    return build(name, config, data_dir=data_dir)
  except OSError:
    # Another process (another host, a parallel test) may have finished the same build first: TFDS
    # then fails to rename its own incomplete directory onto the existing one.
    if is_built(name, config, data_dir):
      return version_dir(name, config, data_dir)
    raise
