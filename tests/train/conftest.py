"""Shared fixtures of the engine tests: the embedded deepmimic dataset, built once per session."""

import pytest


@pytest.fixture(scope='session')
def deepmimic_dir(tmp_path_factory):
  from jaxpose.data import build

  d = tmp_path_factory.mktemp('datasets')
  build.ensure_built('deepmimic', data_dir=str(d))
  return str(d)
