"""MediaPipe Pose on the four Pose2Sim demo videos -> a small 2D keypoint npz (run in its own venv).

Runs with mediapipe==0.10.14 (legacy `mp.solutions.pose`, model_complexity=1, offline: the wheel ships
pose_landmark_full.tflite) and numpy/opencv from that venv only; it never imports jaxpose. Use
`run_mediapipe.sh`, which creates the venv.

Output npz (the format `tfds_builders/pose2sim` and `geometry_check.py` read):
  cameras         (V,) str        camera names, natural order (cam01..cam04)
  kp2d_px         (V, T, 17, 2)   float32 H36M-17 keypoints, image pixels (NaN where not detected)
  kp2d_conf       (V, T, 17)      float32 MediaPipe visibility (the minimum over averaged landmarks)
  mp33_px         (V, T, 33, 2)   float32 raw MediaPipe landmarks, pixels
  mp33_visibility (V, T, 33)      float32
  res_w, res_h    (V,)            int32 frame size of each video
  fps             (V,)            float32
  meta            JSON string     provenance (videos BSD-3 from pose2sim, model Apache-2.0, settings)

H36M-17 from MediaPipe (research/real_data.md §4; not an official mapping; equal to
jaxpose.geometry.skeleton's mediapipe33 -> h36m17 conversion): pelvis = mean(hips 23, 24),
thorax = mean(shoulders 11, 12), spine = mean(pelvis, thorax), neck/nose = nose 0,
head = mean(ears 7, 8); limbs R hip/knee/ankle 24/26/28, L 23/25/27, L shoulder/elbow/wrist
11/13/15, R 12/14/16.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import cv2
import mediapipe as mp
import numpy as np

# H36M-17 joint i = mean of these MediaPipe landmarks (spine: the mean of pelvis and thorax sources).
H36M_FROM_MP = (
  (23, 24),  # 0 pelvis
  (24,),  # 1 right hip
  (26,),  # 2 right knee
  (28,),  # 3 right ankle
  (23,),  # 4 left hip
  (25,),  # 5 left knee
  (27,),  # 6 left ankle
  None,  # 7 spine = mean(pelvis, thorax)
  (11, 12),  # 8 thorax
  (0,),  # 9 neck/nose
  (7, 8),  # 10 head
  (11,),  # 11 left shoulder
  (13,),  # 12 left elbow
  (15,),  # 13 left wrist
  (12,),  # 14 right shoulder
  (14,),  # 15 right elbow
  (16,),  # 16 right wrist
)


def to_h36m(px: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(T, 33, 2), (T, 33) -> (T, 17, 2), (T, 17)."""
  out = np.zeros(px.shape[:1] + (17, 2), np.float32)
  conf = np.zeros(px.shape[:1] + (17,), np.float32)
  for j, src in enumerate(H36M_FROM_MP):
    if src is None:
      continue
    out[:, j] = px[:, list(src)].mean(axis=1)
    conf[:, j] = vis[:, list(src)].min(axis=1)
  out[:, 7] = 0.5 * (out[:, 0] + out[:, 8])
  conf[:, 7] = np.minimum(conf[:, 0], conf[:, 8])
  return out, conf


def run_video(path: pathlib.Path, complexity: int):
  cap = cv2.VideoCapture(str(path))
  if not cap.isOpened():
    raise OSError(f'{path}: cannot open video')
  fps = cap.get(cv2.CAP_PROP_FPS)
  pts, vis = [], []
  size = None
  with mp.solutions.pose.Pose(
    static_image_mode=False,
    model_complexity=complexity,
    smooth_landmarks=True,
    enable_segmentation=False,
    min_detection_confidence=0.5,
    min_tracking_confidence=0.5,
  ) as pose:
    while True:
      ok, bgr = cap.read()
      if not ok:
        break
      h, w = bgr.shape[:2]
      size = (w, h)
      res = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
      if res.pose_landmarks is None:
        pts.append(np.full((33, 2), np.nan, np.float32))
        vis.append(np.zeros(33, np.float32))
        continue
      lm = res.pose_landmarks.landmark
      pts.append(np.array([[p.x * w, p.y * h] for p in lm], np.float32))
      vis.append(np.array([p.visibility for p in lm], np.float32))
  cap.release()
  if not pts:
    raise OSError(f'{path}: no frames decoded')
  return np.stack(pts), np.stack(vis), size, fps


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--demo', required=True, help='Pose2Sim Demo_SinglePerson directory')
  ap.add_argument('--out', required=True, help='output npz')
  ap.add_argument('--complexity', type=int, default=1)
  args = ap.parse_args()
  videos = sorted((pathlib.Path(args.demo) / 'videos').glob('cam*.mp4'))
  if len(videos) < 2:
    raise SystemExit(f'{args.demo}/videos: expected cam01.mp4 ... cam04.mp4, found {videos}')
  raw, vis, sizes, fps, timing = [], [], [], [], []
  for v in videos:
    t0 = time.time()
    p, s, size, f = run_video(v, args.complexity)
    timing.append((time.time() - t0) / len(p))
    raw.append(p)
    vis.append(s)
    sizes.append(size)
    fps.append(f)
    found = int(np.isfinite(p[:, 0, 0]).sum())
    print(
      f'{v.name}: {len(p)} frames {size[0]}x{size[1]} @ {f:.0f} fps, person in {found}, '
      f'{timing[-1]:.3f} s/frame'
    )
  counts = {v.name: len(p) for v, p in zip(videos, raw)}
  if len(set(counts.values())) != 1:
    raise SystemExit(f'videos disagree in frame count: {counts}')
  h36 = [to_h36m(p, s) for p, s in zip(raw, vis)]
  meta = {
    'source': 'pose2sim==0.10.49 Pose2Sim/Demo_SinglePerson/videos (BSD-3-Clause)',
    'model': f'mediapipe=={mp.__version__} solutions.pose, model_complexity={args.complexity} '
    '(pose_landmark_full.tflite, Apache-2.0), static_image_mode=False, smooth_landmarks=True, '
    'min_detection/tracking_confidence=0.5',
    'mapping': 'H36M-17 per research/real_data.md §4 (head = mean of ears, no upward push)',
    'opencv': cv2.__version__,
    'seconds_per_frame': [round(t, 4) for t in timing],
  }
  np.savez_compressed(
    args.out,
    cameras=np.array([v.stem for v in videos]),
    kp2d_px=np.stack([k for k, _ in h36]),
    kp2d_conf=np.stack([c for _, c in h36]),
    mp33_px=np.stack(raw),
    mp33_visibility=np.stack(vis),
    res_w=np.array([s[0] for s in sizes], np.int32),
    res_h=np.array([s[1] for s in sizes], np.int32),
    fps=np.array(fps, np.float32),
    meta=np.asarray(json.dumps(meta)),
  )
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
