"""The Pose2Sim demo as calibrated real multi-view data: find the files, read them, pseudo 3D.

Source: the `pose2sim` package (PyPI, BSD-3-Clause; verified with 0.10.49), folder
`Pose2Sim/Demo_SinglePerson/`: `videos/cam01.mp4 ... cam04.mp4` (100 synchronised frames at 60 fps,
portrait 1080x1920 / 1088x1920) and `calibration/Calib.qca.txt` (Qualisys; `jaxpose.data.qca`).
research/real_data.md §3 describes it. There is no marker ground truth: the 3D here is **pseudo
ground truth**, triangulated from 2D keypoints with the calibration.

2D keypoints come from a user-supplied npz (H36M-17 order, e.g. the MediaPipe output of
experiments/pose2sim_geometry/run_mediapipe.sh, committed there as kp2d_mediapipe_h36m17.npz):

  cameras    (V,) str           camera names matching the calibration (cam01 ... cam04)
  kp2d_px    (V, T, 17, 2)      float, pixels of the video frames as stored (distorted), NaN where
                                the detector found nothing
  kp2d_conf  (V, T, 17)         optional float in [0, 1] (detector visibility); 1 when absent

Pseudo 3D (`triangulate_pseudo_gt`): undistort each view's keypoints (OpenCV, the calibration's
k1, k2, p1, p2), then confidence-weighted DLT from the best 3 of the 4 views per joint and frame
(lowest mean reprojection error; `jaxpose.geometry.triangulation.triangulate_best_subset`), the
check of real_data.md §3 (median reprojection error 8.1 px with MediaPipe, experiments/
pose2sim_geometry). World frame: Qualisys lab, z up, metres.

OpenCV decodes the videos (imported lazily; `opencv-python-headless`).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
from collections.abc import Iterator, Sequence

import numpy as np

from jaxpose.data import qca
from jaxpose.data.io import DataFormatError, ManualDirError
from jaxpose.geometry import triangulation

DEMO = 'Demo_SinglePerson'
CALIB = 'calibration/Calib.qca.txt'
KP2D_FILE = 'pose2sim_kp2d.npz'
ENV_KP2D = 'JAXPOSE_POSE2SIM_KP2D'
NUM_JOINTS = 17
VIS_THRESHOLD = 0.5
_REPO = pathlib.Path(__file__).resolve().parents[2]
COMMITTED_KP2D = _REPO / 'experiments' / 'pose2sim_geometry' / 'kp2d_mediapipe_h36m17.npz'

INSTRUCTIONS = f"""\
The Pose2Sim demo is needed (BSD-3-Clause, ~51 MB). Either install the package into this
environment (pip install pose2sim==0.10.49), or download and unzip the wheel and pass its folder:
  pip download --no-deps pose2sim==0.10.49 -d pose2sim_wheel
  unzip -q pose2sim_wheel/pose2sim-0.10.49-py3-none-any.whl 'Pose2Sim/{DEMO}/*' -d pose2sim_demo
  jaxpose data build pose2sim --manual_dir pose2sim_demo
2D keypoints (H36M-17, see jaxpose/data/pose2sim.py for the npz format): put {KP2D_FILE} in the
manual_dir, or set ${ENV_KP2D}; by default the repo's committed MediaPipe output
experiments/pose2sim_geometry/kp2d_mediapipe_h36m17.npz is used."""


def _is_demo(path: pathlib.Path) -> bool:
  return (path / CALIB).is_file() and (path / 'videos').is_dir()


def find_demo_dir(manual_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """The Demo_SinglePerson folder: inside manual_dir (several layouts), else the installed package.

  manual_dir may be the demo folder itself, its parent, or the folder a wheel was unzipped into
  (holding Pose2Sim/Demo_SinglePerson).

  Raises:
    ManualDirError: neither a manual_dir with the demo nor an installed `Pose2Sim` package.
  """
  tried = []
  if manual_dir:
    root = pathlib.Path(manual_dir).expanduser()
    for cand in (root, root / DEMO, root / 'Pose2Sim' / DEMO):
      if _is_demo(cand):
        return cand
      tried.append(str(cand))
  spec = importlib.util.find_spec('Pose2Sim')
  if spec is not None and spec.submodule_search_locations:
    for loc in spec.submodule_search_locations:
      cand = pathlib.Path(loc) / DEMO
      if _is_demo(cand):
        return cand
      tried.append(str(cand))
  else:
    tried.append('installed package Pose2Sim (not installed)')
  raise ManualDirError(f'Pose2Sim demo not found (looked in {", ".join(tried)}).\n{INSTRUCTIONS}')


def find_kp2d_file(manual_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """manual_dir/pose2sim_kp2d.npz, else $JAXPOSE_POSE2SIM_KP2D, else the committed MediaPipe file."""
  if manual_dir and (pathlib.Path(manual_dir) / KP2D_FILE).is_file():
    return pathlib.Path(manual_dir) / KP2D_FILE
  env = os.environ.get(ENV_KP2D)
  if env:
    if not pathlib.Path(env).is_file():
      raise ManualDirError(f'${ENV_KP2D}={env} is not a file.\n{INSTRUCTIONS}')
    return pathlib.Path(env)
  if COMMITTED_KP2D.is_file():
    return COMMITTED_KP2D
  raise ManualDirError(f'no 2D keypoint file found.\n{INSTRUCTIONS}')


def read_kp2d(path: str | os.PathLike, cameras: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
  """Reads the 2D keypoint npz (format in the module docstring), reordered to `cameras`.

  Returns:
    kp2d_px (V, T, 17, 2) float64 (NaN kept) and conf (V, T, 17) float64 (0 where NaN).

  Raises:
    DataFormatError: a missing key, a camera the calibration has but the file lacks, a wrong
      shape, views that disagree in frame count, confidences outside [0, 1].
  """
  path = pathlib.Path(path)
  with np.load(path, allow_pickle=False) as z:
    for key in ('cameras', 'kp2d_px'):
      if key not in z.files:
        raise DataFormatError(path, key, f'key {key!r}', f'keys {sorted(z.files)}')
    names = [str(c) for c in z['cameras']]
    kp = np.asarray(z['kp2d_px'], np.float64)
    conf = np.asarray(z['kp2d_conf'], np.float64) if 'kp2d_conf' in z.files else None
  if kp.ndim != 4 or kp.shape[0] != len(names) or kp.shape[2:] != (NUM_JOINTS, 2):
    raise DataFormatError(
      path, 'kp2d_px', f'(V={len(names)}, T, {NUM_JOINTS}, 2)', f'shape {kp.shape}'
    )
  if conf is None:
    conf = np.ones(kp.shape[:3])
  if conf.shape != kp.shape[:3]:
    raise DataFormatError(path, 'kp2d_conf', f'shape {kp.shape[:3]}', f'shape {conf.shape}')
  missing = [c for c in cameras if c not in names]
  if missing:
    raise DataFormatError(path, 'cameras', f'every calibrated camera {list(cameras)}', str(names))
  order = [names.index(c) for c in cameras]
  kp, conf = kp[order], conf[order]
  bad = np.isfinite(conf) & ((conf < 0) | (conf > 1))
  if bad.any():
    v = int(np.argwhere(bad)[0, 0])
    raise DataFormatError(path, f'kp2d_conf[{cameras[v]}]', 'values in [0, 1]', 'values outside')
  nan = ~np.isfinite(kp).all(-1)
  conf = np.where(nan | ~np.isfinite(conf), 0.0, conf)
  return kp, conf


def undistort_points(kp2d_px: np.ndarray, cam: qca.QcaCamera) -> np.ndarray:
  """(..., 2) distorted pixels -> undistorted pixels of the same K (NaN kept). Needs OpenCV."""
  import cv2

  flat = np.asarray(kp2d_px, np.float64).reshape(-1, 1, 2)
  ok = np.isfinite(flat).all(-1)[:, 0]
  out = flat.copy()
  if ok.any():
    out[ok] = cv2.undistortPoints(flat[ok], cam.K, cam.dist, P=cam.K)
  return out.reshape(np.shape(kp2d_px))


def triangulate_pseudo_gt(
  kp2d_px: np.ndarray,
  conf: np.ndarray,
  cams: Sequence[qca.QcaCamera],
  *,
  num_views: int = 3,
  where: str = '',
) -> tuple[np.ndarray, np.ndarray]:
  """Pseudo 3D from the 2D keypoints: undistort, confidence-weighted best-`num_views` DLT.

  Args:
    kp2d_px: (V, T, J, 2) distorted pixels (NaN = missing).
    conf: (V, T, J) confidences (0 = missing).
    cams: the V calibrated cameras.
    num_views: views per subset (3 of 4 as real_data.md §3).
    where: context for errors (the keypoint file).

  Returns:
    pose3d_world (T, J, 3) metres and reprojection error (T, J) px (mean over the chosen views).

  Raises:
    DataFormatError: a joint seen (conf > 0) in fewer than 2 views, naming the frame and joint.
  """
  v = len(cams)
  seen = (conf > 0).sum(axis=0)  # (T, J)
  if (seen < 2).any():
    t, j = (int(i) for i in np.argwhere(seen < 2)[0])
    raise DataFormatError(
      where, f'frame {t} joint {j}', 'the joint in at least 2 views', f'{int(seen[t, j])} views'
    )
  und = np.stack([undistort_points(kp2d_px[i], cams[i]) for i in range(v)])
  und = np.where(np.isfinite(und), und, 0.0)
  proj = np.stack([c.P for c in cams])
  kp = np.transpose(und, (1, 0, 2, 3))  # (T, V, J, 2)
  w = np.transpose(conf, (1, 0, 2))
  pts, _, err = triangulation.triangulate_best_subset(kp, proj, w, num_views=min(num_views, v))
  return pts, err


def video_path(demo: pathlib.Path, camera: str) -> pathlib.Path:
  return pathlib.Path(demo) / 'videos' / f'{camera}.mp4'


def video_info(path: pathlib.Path) -> tuple[int, int, int, float]:
  """(frames, width, height, fps) of a video as OpenCV reports it.

  Raises:
    DataFormatError: the file cannot be opened.
  """
  import cv2

  cap = cv2.VideoCapture(str(path))
  if not cap.isOpened():
    raise DataFormatError(path, '', 'a video OpenCV can decode', 'unreadable file')
  info = (
    int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
    int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
    int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    float(cap.get(cv2.CAP_PROP_FPS)),
  )
  cap.release()
  return info


def read_frames(path: pathlib.Path, num_frames: int) -> Iterator[np.ndarray]:
  """Yields exactly `num_frames` BGR uint8 frames (H, W, 3).

  Raises:
    DataFormatError: the video ends early or a frame cannot be decoded, naming file and frame.
  """
  import cv2

  cap = cv2.VideoCapture(str(path))
  if not cap.isOpened():
    raise DataFormatError(path, '', 'a video OpenCV can decode', 'unreadable file')
  try:
    for i in range(num_frames):
      ok, frame = cap.read()
      if not ok or frame is None:
        raise DataFormatError(path, f'frame {i}', f'{num_frames} decodable frames', f'{i} frames')
      yield frame
  finally:
    cap.release()
