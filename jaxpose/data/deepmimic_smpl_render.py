"""The SMPL-format synthetic body, posed by DeepMimic, rendered through the four H36M cameras.

The embedded image dataset `deepmimic_smpl_render` (tfds_builders/deepmimic_smpl_render) for body
regressors (DSR): every frame has an image, a per-pixel part-label map, the body parameters in each
camera's frame, the H36M-17 joints and K. Made here with numpy, OpenCV and JAX (vertices) only:

  motion   `jaxpose.data.deepmimic_smpl.retarget_clips`: DeepMimic's clips retargeted onto
           `jaxpose.body.synthetic` ('small': 400 vertices / 796 faces, or 'full': 6890 / 13776;
           NOT SMPL), 50 Hz, subsampled to the dataset rate.
  placing  the take offsets of `jaxpose.data.deepmimic_render.take_offset` (computed on the
           mesh-regressed joints), so subjects are off-centre as in `deepmimic_render`.
  mesh     vertices from the body parameters (`jaxpose.data.bodies.body_vertices`), in the world;
           drawn with the hard z-buffer `jaxpose.render.zbuffer` (pixel centres on integers, the
           OpenCV convention of the stored K), one colour per body part (`PART_COLORS`) with Lambert
           shading from the world light and a headlight on the face normals; no anti-aliasing.
  labels   `jaxpose.body.parts`: each face's part (largest summed skinning weight of its vertices;
           `PARTS`, 0 = background), written wherever that face is the nearest one.
  room     the textured room of `deepmimic_render.background` (same colours per take).
  cameras  H36M's four cameras with S9 extrinsics, intrinsics scaled by `scale` (0.224 gives 224 x
           224 images), no lens distortion: dist = 0 and the 2D joints are the exact pinhole
           projections of the stored 3D through the stored K.

Per view the body is stored in that camera's frame (`jaxpose.data.bodies.to_camera_frame`):
`jaxpose.body.forward(model, body_rotmat[v], body_betas, body_transl[v])` gives the camera-frame
vertices whose H36M-17 regression is `pose3d_cam[v]` (the dataset's joints are the mesh-regressed
ones, as in `deepmimic_smpl`). The numbers measured on this data only compare runs with each other:
one synthetic body and shape, no clothing, synthetic images.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Sequence

import numpy as np

from jaxpose.body import parts as body_parts
from jaxpose.data import bodies, deepmimic, deepmimic_smpl
from jaxpose.data import deepmimic_render as dr

PARTS = body_parts.PARTS
# RGB albedo per part (index = label): the capsule body's colours, so both datasets look alike.
PART_COLORS = dr.PART_COLORS
assert tuple(dr.PARTS) == PARTS, 'deepmimic_render and jaxpose.body.parts must share the labels'


@functools.cache
def body_arrays(variant: str) -> dict[str, np.ndarray]:
  """The synthetic body's faces (F, 3) int64 and face part labels (F,) uint8 (`body.parts`)."""
  from jaxpose.body import synthetic

  a = synthetic.synthetic_arrays(variant)
  faces = np.asarray(a['f'], np.int64)
  return {'faces': faces, 'face_parts': body_parts.face_parts(a['weights'], faces)}


@dataclasses.dataclass(frozen=True)
class Take:
  """One clip on the body, placed in the room, at the dataset rate (N frames).

  Attributes:
    clip: clip name; take_id: its index in `deepmimic.CLIPS`.
    source_frames: (N,) indices of the kept frames at 50 Hz.
    rotmat: (N, 24, 3, 3) local rotations, joint 0 the world-frame global orientation.
    betas: (10,) shape; transl: (N, 3) world `transl` (offset included), metres.
    rest_root: (3,) the shaped rest root joint, metres.
    joints: (N, 17, 3) mesh-regressed H36M-17, world metres (offset included).
    vertices: (N, V, 3) float32 world vertices, metres.
  """

  clip: str
  take_id: int
  source_frames: np.ndarray
  rotmat: np.ndarray
  betas: np.ndarray
  transl: np.ndarray
  rest_root: np.ndarray
  joints: np.ndarray
  vertices: np.ndarray


def takes(clips: Sequence[str], variant: str, fps: float, max_frames: int = 0) -> dict[str, Take]:
  """Retargets and places `clips` (see the module docstring); {clip: Take}."""
  from jaxpose.body import synthetic

  ordered = tuple(c for c in deepmimic.CLIPS if c in clips)
  ret = deepmimic_smpl.retarget_clips(ordered, variant)
  model = synthetic.synthetic_model(variant)
  cams = dr.views(1.0)
  out = {}
  for clip in ordered:
    r = ret[clip]
    offset = dr.take_offset(clip, r.joints_mesh, cams)
    idx = dr.frame_indices(len(r.rotmat), fps, max_frames)
    transl = r.transl[idx] + offset
    verts = bodies.body_vertices(model, r.rotmat[idx], r.betas, transl, chunk=32)
    out[clip] = Take(
      clip=clip,
      take_id=deepmimic.CLIPS.index(clip),
      source_frames=idx,
      rotmat=r.rotmat[idx],
      betas=r.betas,
      transl=transl,
      rest_root=r.rest_root,
      joints=r.joints_mesh[idx] + offset,
      vertices=verts,
    )
  return out


def render_mesh(
  view: dr.View,
  vertices: np.ndarray,
  faces: np.ndarray,
  face_parts: np.ndarray,
  background_rgb: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
  """Renders one posed mesh into a view.

  Args:
    view: the camera.
    vertices: (V, 3) world metres.
    faces: (F, 3) int; face_parts: (F,) uint8 `PARTS` labels.
    background_rgb: (H, W, 3) uint8 room image of the view.

  Returns:
    image (H, W, 3) uint8 RGB, part labels (H, W) uint8 (0 = background).
  """
  from jaxpose.render import zbuffer

  cam = dr.to_camera(view, np.asarray(vertices, np.float64))
  if cam[:, 2].min() <= 1e-3:
    raise ValueError(f'the body is behind or at camera {view.name} (z = {cam[:, 2].min():.3f} m)')
  tri = cam[faces]
  normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)
  centre = tri.mean(axis=1)
  to_cam = -centre / np.linalg.norm(centre, axis=-1, keepdims=True)
  normal *= np.where((normal * to_cam).sum(-1, keepdims=True) < 0, -1.0, 1.0)  # face the camera
  light = view.R @ dr.LIGHT_WORLD
  shade = 0.3 + 0.5 * np.clip(normal @ light, 0, None) + 0.25 * (normal * to_cam).sum(-1)
  colors = PART_COLORS[face_parts].astype(np.float64) * shade[:, None]
  img = zbuffer.render(
    cam, faces, view.K, view.height, view.width, face_colors=colors, pixel_center=0.0, near=1e-3
  )
  hit = img.fragments.face_index >= 0
  labels = np.where(hit, face_parts[np.maximum(img.fragments.face_index, 0)], 0).astype(np.uint8)
  rgb = np.where(hit[..., None], np.clip(np.rint(img.color), 0, 255), background_rgb)
  return rgb.astype(np.uint8), labels


@dataclasses.dataclass(frozen=True)
class Frame(dr.Frame):
  """A rendered frame of the capsule dataset (`deepmimic_render.Frame`: clip, take_id, frame_idx,
  source_frame, images, labels, pose3d_world) with the mesh body's camera-frame labels.

  Attributes:
    pose3d_cam: (V, 17, 3) metres; kp2d_px: (V, 17, 2) pixels.
    body_rotmat: (V, 24, 3, 3) camera-frame global orientation; body_transl: (V, 3) metres;
    body_betas: (10,).
  """

  pose3d_cam: np.ndarray
  kp2d_px: np.ndarray
  body_rotmat: np.ndarray
  body_transl: np.ndarray
  body_betas: np.ndarray


def render_take(take: Take, cams: Sequence[dr.View], variant: str) -> Iterator[Frame]:
  """Renders a take through every camera, frame by frame (lazily)."""
  mesh = body_arrays(variant)
  rooms = [dr.background(v, take.take_id) for v in cams]
  per_view = [
    bodies.to_camera_frame(take.rotmat, take.transl, take.rest_root, v.R, v.t) for v in cams
  ]
  for i, src in enumerate(take.source_frames):
    rendered = [
      render_mesh(v, take.vertices[i], mesh['faces'], mesh['face_parts'], room)
      for v, room in zip(cams, rooms)
    ]
    world = take.joints[i]
    yield Frame(
      clip=take.clip,
      take_id=take.take_id,
      frame_idx=i,
      source_frame=int(src),
      images=tuple(r[0] for r in rendered),
      labels=tuple(r[1] for r in rendered),
      pose3d_world=world,
      pose3d_cam=np.stack([dr.to_camera(v, world) for v in cams]),
      kp2d_px=np.stack([dr.project(v, world) for v in cams]),
      body_rotmat=np.stack([rot[i] for rot, _ in per_view]),
      body_transl=np.stack([tr[i] for _, tr in per_view]),
      body_betas=take.betas,
    )
