"""DeepMimic motion rendered through the four H36M cameras: a simple articulated body in a room.

The embedded multi-view image dataset `deepmimic_render` (tfds_builders/deepmimic_render) is made
here, with numpy and OpenCV only:

  body     the DeepMimic clips (jaxpose.data.deepmimic: pybullet's mocap, resampled to 50 Hz, FK on
           the pybullet humanoid) posed as 20 capsules and spheres (`PRIMITIVES`): a head sphere and
           neck, a torso of four capsules, upper/lower arms, hands, upper/lower legs and feet (the
           feet follow the ankle links' world rotations). Radii follow the humanoid's collision
           shapes (humanoid.urdf x 0.25). Each part has its own colour and label (`PARTS`; L and R
           separate, 0 = background).
  shading  exact ray-capsule intersection per pixel (pixel centres at integer coordinates, rays
           K^-1 (u, v, 1)), a z-buffer over the primitives (self-occlusion is exact), Lambert
           shading from a world light plus a headlight; no anti-aliasing.
  room     a deterministic textured background per take and camera: the world floor z = 0 with a
           checkerboard modulated by value noise, a cylindrical wall of radius 7 m with panels and
           a ceiling band, all in world coordinates, so the 4 views see one consistent room. Each
           take (clip) has its own colours, tile size and noise.
  cameras  H36M's four cameras with S9 extrinsics (jaxpose.geometry.camera), intrinsics scaled by
           `scale` (f and c times scale; 0.5 gives 500 x 500 and 500 x 501 images for the 1000 x
           1000 and 1000 x 1002 sensors). No lens distortion is rendered, so `dist` is stored as 0
           and the 2D labels are the exact pinhole projections through the stored K.
  placing  each take is moved off the room's centre by a deterministic horizontal offset
           (`take_offsets`: a golden-angle direction per clip, the largest radius <= 1.2 m that
           keeps all 17 joints at least 3 % of the width inside every image in >= 98 % of the
           clip's frames), so subjects are off-centre in the images (PersPose's case).

The world frame is the H36M one (z up, metres), the clip centred on its mean root position as in
`deepmimic.to_h36m17` and then shifted by the take's offset; `pose3d_world` is exactly what is
drawn. The numbers measured on this data only compare runs with each other: one body shape, a
ragdoll skeleton, no clothing, no real image statistics.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Sequence

import numpy as np

from jaxpose.body import parts
from jaxpose.data import deepmimic

PARTS = parts.PARTS  # the body's part labels (jaxpose.body.parts), 0 = background
# RGB albedo per part (index = label). Left and right differ so a mirrored image is recognisable.
PART_COLORS = np.array(
  [
    (0, 0, 0),
    (232, 190, 152),
    (70, 110, 165),
    (225, 120, 40),
    (40, 175, 200),
    (245, 170, 70),
    (70, 120, 235),
    (250, 215, 120),
    (150, 110, 240),
    (200, 60, 60),
    (60, 190, 90),
    (235, 115, 135),
    (125, 220, 165),
    (150, 40, 45),
    (30, 115, 60),
  ],
  np.uint8,
)
# (part, start point, end point, radius in metres); start == end is a sphere. Points are keys of
# `body_points`. Radii from humanoid.urdf's collision shapes x 0.25 (torso: capsules instead of the
# humanoid's three spheres).
PRIMITIVES = (
  ('head', 'head_centre', 'head_centre', 0.1025),
  ('head', 'neck', 'head_centre', 0.05),
  ('torso', 'root', 'chest', 0.10),
  ('torso', 'chest', 'neck', 0.11),
  ('torso', 'left_hip', 'right_hip', 0.08),
  ('torso', 'left_shoulder', 'right_shoulder', 0.055),
  ('left_upper_arm', 'left_shoulder', 'left_elbow', 0.045),
  ('right_upper_arm', 'right_shoulder', 'right_elbow', 0.045),
  ('left_lower_arm', 'left_elbow', 'left_wrist', 0.04),
  ('right_lower_arm', 'right_elbow', 'right_wrist', 0.04),
  ('left_hand', 'left_wrist', 'left_hand_tip', 0.04),
  ('right_hand', 'right_wrist', 'right_hand_tip', 0.04),
  ('left_upper_leg', 'left_hip', 'left_knee', 0.06),
  ('right_upper_leg', 'right_hip', 'right_knee', 0.06),
  ('left_lower_leg', 'left_knee', 'left_ankle', 0.05),
  ('right_lower_leg', 'right_knee', 'right_ankle', 0.05),
  ('left_foot', 'left_heel', 'left_toe', 0.035),
  ('right_foot', 'right_heel', 'right_toe', 0.035),
)
HAND_LENGTH = 0.06  # metres past the wrist, along the forearm
# Heel and toe in the ankle link's frame (y-up humanoid, facing +x), metres: the URDF foot box
# (0.177 x 0.055 x 0.09 at (0.045, -0.0225, 0)) as a capsule along its length.
HEEL = np.array([-0.02, -0.03, 0.0])
TOE = np.array([0.11, -0.03, 0.0])
WALL_RADIUS = 7.0  # metres; the H36M cameras stand 5.3-5.6 m from the centre
WALL_HEIGHT = 3.2
LIGHT_WORLD = np.array([0.35, 0.25, 1.0]) / np.linalg.norm([0.35, 0.25, 1.0])
MAX_OFFSET = 1.2  # metres
GOLDEN_ANGLE = np.pi * (3 - np.sqrt(5))


def part_index(name: str) -> int:
  """Label of a part name (ValueError listing the parts)."""
  if name not in PARTS:
    raise ValueError(f'unknown body part {name!r}; parts: {", ".join(PARTS)}')
  return PARTS.index(name)


def _yup_to_zup(p: np.ndarray) -> np.ndarray:
  return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


@functools.cache
def body_points(clips: tuple[str, ...]) -> dict[str, dict[str, np.ndarray]]:
  """World points of the drawn body, per clip, at 50 Hz (H36M frame: z up, metres, centred).

  Returns:
    {clip: {'h36m17': (T, 17, 3), point name: (T, 3) for every point of `PRIMITIVES`}}, float64,
    each clip centred on its mean root position (as `deepmimic.clips_h36m17`), without the take
    offset.
  """
  pose = deepmimic.resample([deepmimic.read_clip(deepmimic.clip_path(c)) for c in clips])
  pos, rot = deepmimic.forward_kinematics_with_rotations(pose)
  offsets = pose['offsets']
  world17 = deepmimic.to_h36m17(pos, offsets)
  from jaxpose.geometry.rotation import quat_rotate

  pts = {k: v for k, v in pos.items() if k != 'head'}
  pts['head_centre'] = pos['head']
  for side in ('left', 'right'):
    fore = pos[f'{side}_wrist'] - pos[f'{side}_elbow']
    fore /= np.linalg.norm(fore, axis=-1, keepdims=True)
    pts[f'{side}_hand_tip'] = pos[f'{side}_wrist'] + HAND_LENGTH * fore
    ankle_rot = rot[f'{side}_ankle']
    pts[f'{side}_heel'] = pos[f'{side}_ankle'] + np.asarray(quat_rotate(ankle_rot, HEEL))
    pts[f'{side}_toe'] = pos[f'{side}_ankle'] + np.asarray(quat_rotate(ankle_rot, TOE))
  out = {}
  for c, s, e in zip(clips, offsets[:-1], offsets[1:]):
    centre = _yup_to_zup(pos['root'][s:e]).mean(axis=0) * (1.0, 1.0, 0.0)
    out[c] = {k: _yup_to_zup(v[s:e]) - centre for k, v in pts.items()}
    out[c]['h36m17'] = world17[s:e]
  return out


@dataclasses.dataclass(frozen=True)
class View:
  """One rendered camera: world -> camera `X_cam = R X_world + t` (metres), pixel intrinsics K.

  Attributes:
    name: H36M camera id.
    K: (3, 3) float64 intrinsics of the rendered image, pixels.
    R: (3, 3) float64; t: (3,) float64 metres.
    width, height: image size, pixels.
  """

  name: str
  K: np.ndarray
  R: np.ndarray
  t: np.ndarray
  width: int
  height: int


def views(scale: float = 0.5) -> tuple[View, ...]:
  """The four H36M cameras with S9 extrinsics, intrinsics and resolution scaled by `scale`."""
  from jaxpose.geometry.rotation import quat_to_matrix

  out = []
  for cam in deepmimic.cameras():
    k = np.eye(3)
    k[[0, 1], [0, 1]] = np.asarray(cam['focal_length'], np.float64) * scale
    k[:2, 2] = np.asarray(cam['center'], np.float64) * scale
    r = np.asarray(quat_to_matrix(cam['orientation'].astype(np.float64))).T  # world -> camera
    t = -r @ cam['translation'].astype(np.float64)
    w, h = round(cam['res_w'] * scale), round(cam['res_h'] * scale)
    out.append(View(cam['id'], k, r, t, int(w), int(h)))
  return tuple(out)


def to_camera(view: View, x_world: np.ndarray) -> np.ndarray:
  """(..., 3) world metres -> camera frame metres."""
  return x_world @ view.R.T + view.t


def project(view: View, x_world: np.ndarray) -> np.ndarray:
  """(..., 3) world metres -> (..., 2) pixels of the rendered image (no distortion)."""
  x = to_camera(view, x_world) @ view.K.T
  return x[..., :2] / x[..., 2:3]


def in_frame_fraction(
  world17: np.ndarray, cams: Sequence[View], margin: float = 0.03
) -> np.ndarray:
  """Per camera, the fraction of frames whose 17 joints are all inside the image by `margin` x
  width. world17: (T, 17, 3) -> (V,)."""
  out = []
  for v in cams:
    uv = project(v, world17)
    m = margin * v.width
    ok = (uv[..., 0] >= m) & (uv[..., 0] <= v.width - 1 - m)
    ok &= (uv[..., 1] >= m) & (uv[..., 1] <= v.height - 1 - m)
    ok &= to_camera(v, world17)[..., 2] > 0
    out.append(ok.all(axis=-1).mean())
  return np.array(out)


def take_offset(clip: str, world17: np.ndarray, cams: Sequence[View]) -> np.ndarray:
  """The take's deterministic horizontal offset (3,) metres (z = 0); see the module docstring."""
  k = deepmimic.CLIPS.index(clip)
  d = np.array([np.cos(GOLDEN_ANGLE * k + 0.5), np.sin(GOLDEN_ANGLE * k + 0.5), 0.0])
  for radius in np.arange(MAX_OFFSET, -1e-9, -0.1):
    off = d * radius
    if in_frame_fraction(world17 + off, cams).min() >= 0.98:
      return off
  return np.zeros(3)


# ---------------------------------------------------------------------------------------------
# Background


def _noise(rng: np.random.Generator, shape: tuple[int, int], octaves: int = 3) -> np.ndarray:
  """Smooth value noise in [0, 1], (H, W) float32: upsampled random grids, summed by octave."""
  import cv2

  h, w = shape
  out = np.zeros(shape, np.float32)
  total = 0.0
  for o in range(octaves):
    gh, gw = max(2, h >> (4 - o)), max(2, w >> (4 - o))
    g = rng.random((gh, gw)).astype(np.float32)
    out += cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC) * 0.5**o
    total += 0.5**o
  return np.clip(out / total, 0, 1)


def _sample(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Bilinear lookup of a (H, W[, C]) float32 texture at pixel coordinates u, v (wrapping)."""
  import cv2

  return cv2.remap(
    tex, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP
  )


@functools.cache
def _room_textures(take_id: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng([20240611, take_id])
  hues = rng.uniform(0, 1, size=4)

  def colour(hue, sat, val):
    import colorsys

    return np.array(colorsys.hsv_to_rgb(hue, sat, val), np.float32) * 255

  return {
    'floor_a': colour(hues[0], rng.uniform(0.15, 0.5), rng.uniform(0.45, 0.75)),
    'floor_b': colour(hues[1], rng.uniform(0.1, 0.4), rng.uniform(0.25, 0.5)),
    'wall_a': colour(hues[2], rng.uniform(0.1, 0.45), rng.uniform(0.55, 0.85)),
    'wall_b': colour(hues[3], rng.uniform(0.1, 0.45), rng.uniform(0.4, 0.7)),
    'tile': np.float32(rng.uniform(0.4, 0.9)),
    'panel': np.float32(rng.uniform(0.6, 1.5)),
    'floor_noise': _noise(rng, (256, 256)),  # 16 m x 16 m, 1/16 m per texel
    'wall_noise': _noise(rng, (128, 704)),  # height 4 m x circumference 44 m, 1/32 m ... 1/16 m
  }


def background(view: View, take_id: int) -> np.ndarray:
  """The room seen by `view` for take `take_id`: (H, W, 3) uint8 RGB, deterministic."""
  tex = _room_textures(int(take_id))
  h, w = view.height, view.width
  vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
  rays = np.stack([uu, vv, np.ones_like(uu)], -1) @ np.linalg.inv(view.K).T
  d = rays @ view.R  # world directions (R^T d)
  c = -view.R.T @ view.t  # camera centre
  # Wall: the positive root of |c_xy + s d_xy| = WALL_RADIUS (the camera is inside).
  a = (d[..., :2] ** 2).sum(-1)
  b = 2 * (d[..., :2] @ c[:2])
  cc = c[:2] @ c[:2] - WALL_RADIUS**2
  s_wall = (-b + np.sqrt(np.maximum(b * b - 4 * a * cc, 0))) / np.maximum(2 * a, 1e-12)
  s_floor = np.where(d[..., 2] < -1e-9, -c[2] / np.minimum(d[..., 2], -1e-9), np.inf)
  floor = s_floor < s_wall
  s = np.where(floor, s_floor, s_wall)
  p = c + s[..., None] * d
  dist = np.linalg.norm(p - c, axis=-1)
  # Floor: checkerboard x value noise.
  tile = tex['tile']
  check = ((np.floor(p[..., 0] / tile) + np.floor(p[..., 1] / tile)) % 2)[..., None]
  fn = _sample(tex['floor_noise'], (p[..., 0] + 8) * 16, (p[..., 1] + 8) * 16)[..., None]
  floor_rgb = (tex['floor_a'] * (1 - check) + tex['floor_b'] * check) * (0.7 + 0.3 * fn)
  # Wall: vertical panels by arc length, value noise, a dark skirting board, a ceiling band.
  arc = (np.arctan2(p[..., 1], p[..., 0]) + np.pi) * WALL_RADIUS
  panel = (np.floor(arc / tex['panel']) % 2)[..., None]
  wn = _sample(tex['wall_noise'], arc * 16, np.clip(p[..., 2], 0, 4) * 32)[..., None]
  wall_rgb = (tex['wall_a'] * (1 - panel) + tex['wall_b'] * panel) * (0.75 + 0.25 * wn)
  wall_rgb = np.where((p[..., 2] < 0.12)[..., None], wall_rgb * 0.35, wall_rgb)
  wall_rgb = np.where((p[..., 2] > WALL_HEIGHT)[..., None], 235.0 - 20 * wn, wall_rgb)
  rgb = np.where(floor[..., None], floor_rgb, wall_rgb)
  rgb *= (1.0 - 0.025 * np.clip(dist - 3, 0, 10))[..., None]  # a little depth cue
  return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Body


@functools.cache
def _rays(K_bytes: bytes, width: int, height: int) -> np.ndarray:
  """Unit ray directions (H, W, 3) float64 of a camera (cached per intrinsics)."""
  K = np.frombuffer(K_bytes, np.float64).reshape(3, 3)
  vv, uu = np.mgrid[0:height, 0:width].astype(np.float64)
  d = np.stack([uu, vv, np.ones_like(uu)], -1) @ np.linalg.inv(K).T
  return d / np.linalg.norm(d, axis=-1, keepdims=True)


def _hit_sphere(rd: np.ndarray, centre: np.ndarray, r: float) -> np.ndarray:
  """Ray parameter of the first hit of rays from the origin with a sphere (inf when missed)."""
  b = rd @ centre
  h = b * b - (centre @ centre - r * r)
  return np.where(h > 0, b - np.sqrt(np.maximum(h, 0)), np.inf)


def _hit_capsule(rd: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
  """Ray parameter (distance along unit rays `rd` (..., 3) from the camera centre) of the first
  hit with the capsule a-b of radius r; inf when missed. Cylinder body and both end spheres."""
  t = np.minimum(_hit_sphere(rd, a, r), _hit_sphere(rd, b, r))
  ba = b - a
  baba = ba @ ba
  if baba < 1e-12:
    return t
  oa = -a
  bard = rd @ ba
  baoa = ba @ oa
  rdoa = rd @ oa
  qa = baba - bard * bard
  qb = baba * rdoa - baoa * bard
  qc = baba * (oa @ oa) - baoa * baoa - r * r * baba
  h = qb * qb - qa * qc
  ok = (h >= 0) & (qa > 1e-12)
  tc = (-qb - np.sqrt(np.maximum(h, 0))) / np.where(ok, qa, 1.0)
  y = baoa + tc * bard
  ok &= (y > 0) & (y < baba) & (tc > 0)
  return np.minimum(t, np.where(ok, tc, np.inf))


def _bbox(view: View, a: np.ndarray, b: np.ndarray, r: float) -> tuple[int, int, int, int] | None:
  """Conservative pixel box (x0, y0, x1, y1) of a capsule in camera coordinates, or None."""
  z = min(a[2], b[2]) - r
  if z <= 1e-3:
    raise ValueError(f'a body part is behind or at camera {view.name} (z = {z:.3f} m)')
  uv = np.stack([a, b]) @ view.K.T
  uv = uv[:, :2] / uv[:, 2:3]
  pad = view.K[0, 0] * r / z + 2
  x0, y0 = np.floor(uv.min(0) - pad).astype(int)
  x1, y1 = np.ceil(uv.max(0) + pad).astype(int) + 1
  x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, view.width), min(y1, view.height)
  return None if x0 >= x1 or y0 >= y1 else (x0, y0, x1, y1)


def render_body(
  view: View, points: dict[str, np.ndarray], background_rgb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Renders one frame of the body into a view.

  Args:
    view: the camera.
    points: {point name: (3,) world metres} for every point of `PRIMITIVES`.
    background_rgb: (H, W, 3) uint8 room image of the view.

  Returns:
    image (H, W, 3) uint8 RGB, part labels (H, W) uint8 (`PARTS` indices, 0 = background).
  """
  rays = _rays(view.K.tobytes(), view.width, view.height)
  depth = np.full((view.height, view.width), np.inf)
  labels = np.zeros((view.height, view.width), np.uint8)
  image = background_rgb.copy()
  light = view.R @ LIGHT_WORLD  # towards the light, camera frame
  for part, pa, pb, r in PRIMITIVES:
    a, b = to_camera(view, points[pa]), to_camera(view, points[pb])
    box = _bbox(view, a, b, r)
    if box is None:
      continue
    x0, y0, x1, y1 = box
    rd = rays[y0:y1, x0:x1]
    t = _hit_capsule(rd, a, b, r)
    z = t * rd[..., 2]
    win = z < depth[y0:y1, x0:x1]
    if not win.any():
      continue
    p = t[win][:, None] * rd[win]
    ba = b - a
    s = np.clip(((p - a) @ ba) / max(ba @ ba, 1e-12), 0, 1)
    n = (p - a - s[:, None] * ba) / r
    shade = 0.3 + 0.5 * np.clip(n @ light, 0, None) + 0.25 * np.clip(-(n * rd[win]).sum(-1), 0, 1)
    colour = PART_COLORS[part_index(part)].astype(np.float64) * shade[:, None]
    depth[y0:y1, x0:x1][win] = z[win]
    labels[y0:y1, x0:x1][win] = part_index(part)
    image[y0:y1, x0:x1][win] = np.clip(np.rint(colour), 0, 255).astype(np.uint8)
  return image, labels


# ---------------------------------------------------------------------------------------------
# Takes


@dataclasses.dataclass(frozen=True)
class Frame:
  """One synchronised frame of a take, all views rendered.

  Attributes:
    clip: the take's clip name (the H36M "action"); take_id: index of the clip in CLIPS.
    frame_idx: index of the frame at the dataset rate; source_frame: index at 50 Hz.
    images: V (H, W, 3) uint8 RGB; labels: V (H, W) uint8 part labels.
    pose3d_world: (17, 3) float64 metres, H36M-17.
  """

  clip: str
  take_id: int
  frame_idx: int
  source_frame: int
  images: tuple[np.ndarray, ...]
  labels: tuple[np.ndarray, ...]
  pose3d_world: np.ndarray


def frame_indices(num_frames: int, fps: float, max_frames: int = 0) -> np.ndarray:
  """50 Hz frame indices kept at `fps` (every round(50 / fps)-th), at most max_frames (0 = all)."""
  step = max(1, round(deepmimic.FPS / fps))
  idx = np.arange(0, num_frames, step)
  return idx[:max_frames] if max_frames else idx


def render_take(
  clip: str,
  pts: dict[str, np.ndarray],
  cams: Sequence[View],
  fps: float,
  max_frames: int = 0,
) -> Iterator[Frame]:
  """Renders a clip through every camera, frame by frame (lazily).

  Args:
    clip: clip name.
    pts: the clip's `body_points` (50 Hz, without offset).
    cams: the views to render.
    fps: dataset frame rate (frames are subsampled from 50 Hz).
    max_frames: keep at most this many frames (0 = all).
  """
  take_id = deepmimic.CLIPS.index(clip)
  offset = take_offset(clip, pts['h36m17'], views(1.0))
  rooms = [background(v, take_id) for v in cams]
  for i, f in enumerate(frame_indices(len(pts['h36m17']), fps, max_frames)):
    frame_pts = {k: v[f] + offset for k, v in pts.items()}
    rendered = [render_body(v, frame_pts, room) for v, room in zip(cams, rooms)]
    yield Frame(
      clip=clip,
      take_id=take_id,
      frame_idx=i,
      source_frame=int(f),
      images=tuple(r[0] for r in rendered),
      labels=tuple(r[1] for r in rendered),
      pose3d_world=frame_pts['h36m17'],
    )
