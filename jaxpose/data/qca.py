"""Reader for Qualisys `.qca.txt` camera calibrations (the Pose2Sim demo's `Calib.qca.txt`).

The conversion follows Pose2Sim's `calibration.read_qca` + `calib_qca_fun` (pose2sim 0.10.49, BSD-3;
research/real_data.md §3), with `binning_factor` = 1:

  * image size: width = fov_video right - left + 1, height = bottom - top + 1 (pixels);
  * fx, fy = focalLengthU / 64, focalLengthV / 64; cx = centerPointU / 64 - left,
    cy = centerPointV / 64 - top (Qualisys stores sub-pixel units of 1/64 px);
  * distortion (k1, k2, p1, p2) = radialDistortion1, radialDistortion2, tangentalDistortion1,
    tangentalDistortion2, each / 64, exactly as Pose2Sim divides them (k3 = 0 here);
  * Rq = the r11..r33 attributes read row-major; camera position C = (x, y, z) / 1000 (mm -> m);
  * world -> camera in the OpenCV convention (x right, y down, z forward):
    R = diag(1, -1, -1) Rq and t = diag(1, -1, -1) (-Rq C); the diag is Pose2Sim's rotation by pi
    about the camera x axis (a Qualisys camera looks along its -z).

World frame: Qualisys lab frame, z up, metres (floor at z ~ 0 in the demo). Cameras are returned in
natural order of their `serial` (cam01, cam02, ..., cam10), keeping only video cameras (`model`
'video' or 'none'), as Pose2Sim does.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import numpy as np

from jaxpose.data.io import DataFormatError

QUALISYS_SUBPIXEL = 64.0
PI_ABOUT_X = np.diag([1.0, -1.0, -1.0])


@dataclasses.dataclass(frozen=True)
class QcaCamera:
  """One camera of a `.qca.txt` calibration, OpenCV convention.

  Attributes:
    name: the camera `serial` (e.g. 'cam01').
    K: (3, 3) float64 intrinsics, pixels.
    dist: (5,) float64 (k1, k2, p1, p2, k3) as Pose2Sim reads them (k3 = 0).
    R: (3, 3) float64 world -> camera rotation.
    t: (3,) float64 world -> camera translation, metres (`X_cam = R X_world + t`).
    size: (width, height) pixels of the calibrated video field of view.
    residual: the file's `avg-residual` (Qualisys reports it in mm).
  """

  name: str
  K: np.ndarray
  dist: np.ndarray
  R: np.ndarray
  t: np.ndarray
  size: tuple[int, int]
  residual: float

  @property
  def P(self) -> np.ndarray:
    """(3, 4) projection matrix K [R | t], world metres -> pixels."""
    return self.K @ np.concatenate([self.R, self.t[:, None]], axis=1)

  @property
  def centre(self) -> np.ndarray:
    """(3,) camera centre in world metres."""
    return -self.R.T @ self.t


def _natural_key(name: str):
  return [int(s) if s.isdigit() else s.lower() for s in re.split(r'(\d+)', name)]


def _attr(node, name: str, file, key: str) -> float:
  value = node.get(name)
  if value is None:
    raise DataFormatError(file, f'{key}@{name}', 'a numeric attribute', 'missing')
  try:
    out = float(value)
  except ValueError:
    raise DataFormatError(file, f'{key}@{name}', 'a number', repr(value)) from None
  if not np.isfinite(out):
    raise DataFormatError(file, f'{key}@{name}', 'a finite number', repr(value))
  return out


def _child(node, tag: str, file, key: str):
  child = node.find(tag)
  if child is None:
    raise DataFormatError(file, f'{key}/{tag}', f'a <{tag}> element', 'none')
  return child


def _camera(node, file, index: int) -> QcaCamera:
  name = node.get('serial') or f'camera{index}'
  key = f'cameras/camera[{index}] ({name})'
  fov = _child(node, 'fov_video', file, key)
  left, right = _attr(fov, 'left', file, f'{key}/fov_video'), _attr(fov, 'right', file, key)
  top, bottom = _attr(fov, 'top', file, f'{key}/fov_video'), _attr(fov, 'bottom', file, key)
  size = (int(right - left + 1), int(bottom - top + 1))
  if size[0] <= 0 or size[1] <= 0:
    raise DataFormatError(file, f'{key}/fov_video', 'right >= left and bottom >= top', str(size))
  intr = _child(node, 'intrinsic', file, key)
  ik = f'{key}/intrinsic'

  def scaled(attr):
    return _attr(intr, attr, file, ik) / QUALISYS_SUBPIXEL

  fx, fy = scaled('focalLengthU'), scaled('focalLengthV')
  k = np.array(
    [[fx, 0.0, scaled('centerPointU') - left], [0.0, fy, scaled('centerPointV') - top], [0, 0, 1]]
  )
  if fx <= 0 or fy <= 0:
    raise DataFormatError(file, ik, 'positive focal lengths', f'fx={fx}, fy={fy}')
  dist = np.array(
    [
      scaled('radialDistortion1'),
      scaled('radialDistortion2'),
      scaled('tangentalDistortion1'),
      scaled('tangentalDistortion2'),
      0.0,
    ]
  )
  tr = _child(node, 'transform', file, key)
  tk = f'{key}/transform'
  rq = np.array([[_attr(tr, f'r{i}{j}', file, tk) for j in (1, 2, 3)] for i in (1, 2, 3)])
  if not np.allclose(rq @ rq.T, np.eye(3), atol=1e-5) or np.linalg.det(rq) <= 0:
    raise DataFormatError(file, tk, 'a rotation matrix r11..r33', np.array2string(rq, precision=4))
  c = np.array([_attr(tr, a, file, tk) for a in ('x', 'y', 'z')]) / 1000.0
  r = PI_ABOUT_X @ rq
  t = PI_ABOUT_X @ (-rq @ c)
  residual = float(node.get('avg-residual', 'nan'))
  return QcaCamera(name, k, dist, r, t, size, residual)


def read_qca(path: str | os.PathLike) -> list[QcaCamera]:
  """Reads every video camera of a Qualisys `.qca.txt` file (conversion in the module docstring).

  Args:
    path: the `.qca.txt` file.

  Returns:
    Cameras in natural order of their names.

  Raises:
    FileNotFoundError: no such file.
    DataFormatError: not XML, no cameras, or a camera with a missing / non-numeric attribute or an
      invalid rotation, naming the file and the camera element.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'{path}: no such Qualisys calibration file')
  try:
    root = ET.parse(path).getroot()
  except ET.ParseError as e:
    raise DataFormatError(
      path, '', 'a Qualisys .qca.txt XML file', f'unparsable XML ({e})'
    ) from None
  nodes = root.findall('cameras/camera')
  if not nodes:
    raise DataFormatError(path, 'cameras/camera', 'at least one camera', 'none')
  cams = [
    _camera(n, path, i)
    for i, n in enumerate(nodes)
    if any(m in n.get('model', '').lower() for m in ('video', 'none'))
  ]
  if not cams:
    raise DataFormatError(
      path, 'cameras/camera@model', "a video camera ('video' or 'none')", 'none'
    )
  return sorted(cams, key=lambda c: _natural_key(c.name))


def _num(x) -> str:
  return repr(float(x))


def qca_text(cameras: Sequence[QcaCamera]) -> str:
  """A `.qca.txt` document for `cameras` (the inverse of `read_qca`; for tests and exports).

  The field of view starts at pixel (0, 0); position in mm; intrinsics in 1/64 px; distortion x 64
  (k3 must be 0, the format's radialDistortion3 is written as 0 as in the Pose2Sim demo).
  """
  rows = []
  for c in cameras:
    rq = PI_ABOUT_X @ c.R
    centre_mm = -c.R.T @ c.t * 1000.0
    w, h = c.size
    fov = f'bottom="{h - 1}" left="0" right="{w - 1}" top="0"'
    rot = ' '.join(f'r{i + 1}{j + 1}="{_num(rq[i, j])}"' for i in range(3) for j in range(3))
    s = QUALISYS_SUBPIXEL
    k1, k2, p1, p2 = (float(v) * s for v in c.dist[:4])
    rows.append(
      f'    <camera active="1" avg-residual="{_num(c.residual)}" model="none" serial="{c.name}">\n'
      f'      <fov_video {fov}/>\n'
      f'      <transform {rot} x="{_num(centre_mm[0])}" y="{_num(centre_mm[1])}" z="{_num(centre_mm[2])}"/>\n'
      f'      <intrinsic centerPointU="{_num(c.K[0, 2] * s)}" centerPointV="{_num(c.K[1, 2] * s)}" '
      f'focalLengthU="{_num(c.K[0, 0] * s)}" focalLengthV="{_num(c.K[1, 1] * s)}" '
      f'radialDistortion1="{_num(k1)}" radialDistortion2="{_num(k2)}" radialDistortion3="0.0" '
      f'skew="0.0" tangentalDistortion1="{_num(p1)}" tangentalDistortion2="{_num(p2)}"/>\n'
      '    </camera>'
    )
  body = '\n'.join(rows)
  return (
    "<?xml version='1.0' encoding='ASCII'?>\n"
    '<calibration source="jaxpose.data.qca.qca_text" type="regular">\n'
    f'  <cameras>\n{body}\n  </cameras>\n</calibration>\n'
  )
