"""The Qualisys .qca.txt reader on a small hand-written file in the official format."""

import numpy as np
import pytest

from jaxpose.data import qca
from jaxpose.data.io import DataFormatError
from jaxpose.geometry import triangulation as tri

CAMERA = """\
    <camera active="1" avg-residual="0.4" model="{model}" point-count="999999999" serial="{name}" viewrotation="0">
      <fov_marker bottom="1923" left="8" right="1095" top="4"/>
      <fov_video bottom="1923" left="8" right="1095" top="4"/>
      <transform r11="0.0" r12="-1.0" r13="0.0" r21="1.0" r22="0.0" r23="0.0" r31="0.0" r32="0.0" r33="1.0" x="1000.0" y="2000.0" z="1500.0"/>
      <intrinsic centerPointU="35328.0" centerPointV="61696.0" focalLengthU="96000.0" focalLengthV="96064.0" focallength="9.3" radialDistortion1="-0.064" radialDistortion2="0.128" radialDistortion3="0.000000" sensorMaxU="69568" sensorMaxV="122816" sensorMinU="0.000000" sensorMinV="0.000000" skew="0.000000" tangentalDistortion1="0.0064" tangentalDistortion2="-0.0032"/>
    </camera>
"""


def _document(*cams):
  return (
    "<?xml version='1.0' encoding='ASCII'?>\n"
    '<calibration created="sometimes ago" type="regular">\n'
    '  <results min-max-diff="0." std-dev="0."/>\n'
    f'  <cameras>\n{"".join(cams)}  </cameras>\n</calibration>\n'
  )


@pytest.fixture
def qca_file(tmp_path):
  path = tmp_path / 'Calib.qca.txt'
  path.write_text(
    _document(
      CAMERA.format(model='none', name='cam10'),
      CAMERA.format(model='marker', name='cam01'),  # not a video camera: skipped
      CAMERA.format(model='video', name='cam2'),
    )
  )
  return path


def test_conversion_follows_pose2sim(qca_file):
  cams = qca.read_qca(qca_file)
  assert [c.name for c in cams] == ['cam2', 'cam10']  # natural order, marker camera dropped
  c = cams[0]
  assert c.size == (1088, 1920)
  # f = focalLength / 64; c = centerPoint / 64 - fov left/top.
  np.testing.assert_allclose(c.K, [[1500.0, 0, 552.0 - 8], [0, 1501.0, 964.0 - 4], [0, 0, 1]])
  np.testing.assert_allclose(c.dist, [-0.001, 0.002, 0.0001, -0.00005, 0.0])
  # R = diag(1, -1, -1) Rq, t = diag(1, -1, -1) (-Rq C), C in metres.
  np.testing.assert_allclose(c.R, [[0, -1, 0], [-1, 0, 0], [0, 0, -1]])
  np.testing.assert_allclose(c.t, [2.0, 1.0, 1.5])
  np.testing.assert_allclose(c.centre, [1.0, 2.0, 1.5])
  assert c.residual == pytest.approx(0.4)
  # The camera looks down the world -z axis: a point 2 m below it projects to the principal point.
  uv = tri.project(np.array([[1.0, 2.0, -0.5]]), c.P[None])[0, 0]
  np.testing.assert_allclose(uv, c.K[:2, 2], atol=1e-9)


def test_writer_roundtrip(qca_file, tmp_path):
  cams = qca.read_qca(qca_file)
  out = tmp_path / 'copy.qca.txt'
  out.write_text(qca.qca_text(cams))
  back = qca.read_qca(out)
  for a, b in zip(cams, back, strict=True):
    assert a.name == b.name and a.size == b.size
    for f in ('K', 'dist', 'R', 't'):
      np.testing.assert_allclose(getattr(b, f), getattr(a, f), atol=1e-12)


def test_errors_name_the_file_and_camera(tmp_path):
  p = tmp_path / 'bad.qca.txt'
  p.write_text(
    _document(CAMERA.format(model='none', name='cam03').replace('focalLengthU="96000.0" ', ''))
  )
  with pytest.raises(
    DataFormatError, match=r'bad.qca.txt: cameras/camera\[0\] \(cam03\)/intrinsic@focalLengthU'
  ):
    qca.read_qca(p)
  p.write_text(
    _document(CAMERA.format(model='none', name='cam03').replace('x="1000.0"', 'x="abc"'))
  )
  with pytest.raises(DataFormatError, match=r"transform@x: expected a number, got 'abc'"):
    qca.read_qca(p)
  p.write_text(
    _document(CAMERA.format(model='none', name='cam03').replace('r33="1.0"', 'r33="2.0"'))
  )
  with pytest.raises(DataFormatError, match='expected a rotation matrix'):
    qca.read_qca(p)
  p.write_text('<calibration><cameras></cameras></calibration>')
  with pytest.raises(DataFormatError, match='expected at least one camera'):
    qca.read_qca(p)
  p.write_text('not xml <')
  with pytest.raises(DataFormatError, match='unparsable XML'):
    qca.read_qca(p)
  with pytest.raises(FileNotFoundError, match='missing.qca.txt'):
    qca.read_qca(tmp_path / 'missing.qca.txt')
