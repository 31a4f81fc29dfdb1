"""Builds the datasets once per session from the synthetic files of jaxpose.data.synthetic."""

import pathlib

import pytest
import tensorflow_datasets as tfds

from jaxpose.data import build, synthetic


@pytest.fixture(scope='session')
def manual_dir(tmp_path_factory) -> pathlib.Path:
  return synthetic.write_all(tmp_path_factory.mktemp('manual'))


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory) -> pathlib.Path:
  tfds.disable_progress_bar()
  return tmp_path_factory.mktemp('tfds')


@pytest.fixture(scope='session')
def built(manual_dir, data_dir):
  """built(name, config) -> {split: [decoded records]} (built on first request)."""
  from jaxpose.data import sources

  cache = {}

  def get(name: str, config: str | None = None):
    if (name, config) not in cache:
      build.build(name, config, manual_dir, data_dir)
      ref = build.dataset_ref(name, config)
      splits = build.get_builder(name, config, data_dir).info.splits
      cache[name, config] = {
        s: [sources._decode(ex) for ex in tfds.data_source(ref, split=s, data_dir=str(data_dir))]
        for s in splits
      }
    return cache[name, config]

  return get
