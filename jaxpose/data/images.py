"""Host-side image operations: decode/encode, crop matrices, warps, augmentation, label transforms.

Everything the image input pipeline (`jaxpose.data.image_pipeline`) does to one view of one frame,
as small numpy/OpenCV functions that the tests check one by one:

  decode_image / decode_mask        JPEG/PNG bytes -> (H, W, 3) RGB uint8 / (H, W) uint8, with an
                                    `ImageDecodeError` naming the record, view and frame
  encode_jpeg / encode_png          the inverse (deterministic bytes for a given OpenCV build)
  pelvis_box                        EpipolarPose's crop box: a `bbox_mm` square around the pelvis,
                                    parallel to the image plane at the pelvis depth, projected
  crop_matrix                       the 3-point affine of the box (scale, rotation), 3x3
  flip_matrix                       the horizontal mirror of a crop about its centre
  warp                              bilinear (images) or nearest (labels) warp through a 3x3
                                    (affine -> cv2.warpAffine, projective -> cv2.warpPerspective)
  sample_augmentation               EpipolarPose's recipe (scale, rotation, colour) + flip
  color_scale, occlude              colour jitter, synthetic occluders
  crop_labels                       2D/3D/K/visibility of a crop, flip included
  imagenet_normalize                uint8 RGB -> the float input of every image model

Conventions (jaxpose/plan CONTRACTS §3):
  * Pixels: x right, y down, integer coordinates at pixel centres (OpenCV's convention; no
    half-pixel shift anywhere, as the official EpipolarPose code, which calls
    `cv2.getAffineTransform` on 3 points and `cv2.warpAffine`).
  * `crop_from_full` (3, 3) maps homogeneous full-image pixels to crop pixels. Affine crops have
    the last row (0, 0, 1); a homography (PersPose's perspective rotation) is any invertible 3x3.
  * `K_crop = crop_from_full @ K_full` projects camera-frame 3D into the crop exactly for an
    undistorted image. A flipped sample mirrors the crop (crop_from_full = flip_matrix @ crop),
    mirrors its 3D in x and swaps L/R joints, and `K_crop = crop_from_full @ K_full @
    diag(-1, 1, 1)`, so `kp2d_px ~ K_crop @ pose3d` still holds (and K_crop keeps fx > 0).

Paper: Kocabas, Karagoz, Akbas, "Self-Supervised Learning of 3D Human Pose using Multi-view
Geometry", CVPR 2019, arXiv 1903.02330; official code github.com/mkocabas/EpipolarPose at commit
299ccb0acd4b0c57ef875aeb77b4e4e177c6accf (lib/utils/img_utils.py, augmentation.py). Numbers and
conventions are reproduced, no code is copied. Deviations:
  * The crop affine is computed in closed form in float64 (the official passes float32 points to
    `cv2.getAffineTransform`; the matrices agree to float32 precision, tests/data/test_images.py).
  * Colour scaling is applied to the uint8 crop and rounded back to uint8 (the batch contract
    carries uint8); the official scales the float crop before normalising. The difference is at
    most half a grey level.
  * Synthetic occlusion pastes random rectangles and ellipses filled with procedural texture
    (smooth value noise, stripes or a checkerboard). The official pastes segmented Pascal VOC
    objects (`DATASET.VOC`); VOC is not available here, so the occluders are synthetic. Occluded
    pixels become background (0) in the part labels; 2D labels and `kp2d_vis` are unchanged (the
    official keeps occluded joints as labelled too).
  * Flip is off in the official recipe (`do_flip_aug = False`); here it follows data.flip_aug and
    mirrors about the crop centre, which is the same matrix as the official's full-image flip
    (x -> W - 1 - x with the box centre mirrored alike) up to the sign of the rotation angle.

Why OpenCV (opencv-python-headless) rather than Pillow: the official EpipolarPose and PersPose code
build their crops with `cv2.getAffineTransform` / `cv2.getRotationMatrix2D` and sample them with
`cv2.warpAffine` / `cv2.warpPerspective`, so OpenCV gives the same pixel-centre convention and the
same bilinear kernel (Pillow's `Image.transform` samples at pixel corners and has a different
bilinear filter near borders); its functions release the GIL, so grain's reader threads decode and
warp in parallel; and its libjpeg-turbo decoder is fast. The headless wheel needs no GUI libraries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np
from jax.typing import ArrayLike

from jaxpose.geometry._array import namespace

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0..255 scale
IMAGENET_STD = (58.395, 57.12, 57.375)
FLIP_3D = np.diag([-1.0, 1.0, 1.0])  # mirror of camera-frame x


class ImageDecodeError(ValueError):
  """Encoded image bytes could not be decoded (unreadable, truncated or the wrong kind)."""


class CameraError(ValueError):
  """A camera matrix is unusable (not finite, not invertible)."""


def imagenet_normalize(image_u8: ArrayLike) -> ArrayLike:
  """uint8 RGB -> ImageNet-normalised float32, the input of every image model.

  `(rgb - (123.675, 116.28, 103.53)) / (58.395, 57.12, 57.375)`, channel last.

  Args:
    image_u8: (..., H, W, 3) uint8 (or any real dtype on the 0..255 scale), RGB; numpy or jax.

  Returns:
    (..., H, W, 3) float32, numpy for numpy input, jax for jax input (works under jit).
  """
  xp = namespace(image_u8)
  x = xp.asarray(image_u8).astype(xp.float32)
  if x.shape[-1] != 3:
    raise ValueError(f'imagenet_normalize: expected (..., H, W, 3) RGB, got shape {x.shape}')
  mean = xp.asarray(IMAGENET_MEAN, xp.float32)
  std = xp.asarray(IMAGENET_STD, xp.float32)
  return (x - mean) / std


# ---------------------------------------------------------------------------------------------
# Encoded bytes


def _kind(data: bytes) -> str:
  if data[:3] == b'\xff\xd8\xff':
    return 'jpeg'
  if data[:8] == b'\x89PNG\r\n\x1a\n':
    return 'png'
  return 'unknown'


def _check_complete(data: bytes, what: str) -> str:
  """The format of `data`; raises if empty, not JPEG/PNG, or missing its end marker (truncated)."""
  if not isinstance(data, bytes | bytearray | memoryview | np.bytes_):
    raise ImageDecodeError(f'{what}: expected encoded image bytes, got {type(data).__name__}')
  data = bytes(data)
  if not data:
    raise ImageDecodeError(f'{what}: empty image bytes')
  kind = _kind(data)
  if kind == 'unknown':
    raise ImageDecodeError(
      f'{what}: expected JPEG or PNG bytes, got {len(data)} bytes starting with {data[:8]!r}'
    )
  # A cut-off file can still decode (libjpeg fills the missing rows with grey), so the end marker
  # is checked explicitly: JPEG ends with EOI (FF D9), PNG with the IEND chunk.
  tail = data.rstrip(b'\x00')
  complete = tail.endswith(b'\xff\xd9') if kind == 'jpeg' else b'IEND' in tail[-12:]
  if not complete:
    raise ImageDecodeError(
      f'{what}: truncated {kind.upper()} ({len(data)} bytes, no end-of-image marker)'
    )
  return kind


def decode_image(data: bytes, what: str = 'image') -> np.ndarray:
  """JPEG/PNG bytes -> (H, W, 3) uint8 RGB.

  Args:
    data: encoded bytes.
    what: names the image in errors, e.g. "deepmimic_render/default:test record 12 (DM walk
      frame 3) view 1 (camera 55011271)".

  Raises:
    ImageDecodeError: empty, not JPEG/PNG, truncated or undecodable bytes; the message starts
      with `what`.
  """
  _check_complete(data, what)
  img = cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_COLOR)
  if img is None:
    raise ImageDecodeError(f'{what}: OpenCV could not decode the {len(bytes(data))} image bytes')
  return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def decode_mask(data: bytes, what: str = 'mask') -> np.ndarray:
  """PNG bytes of a single-channel label image -> (H, W) uint8.

  Raises:
    ImageDecodeError: as `decode_image`, or the PNG is not single-channel 8-bit.
  """
  _check_complete(data, what)
  img = cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_UNCHANGED)
  if img is None:
    raise ImageDecodeError(f'{what}: OpenCV could not decode the {len(bytes(data))} mask bytes')
  if img.ndim != 2 or img.dtype != np.uint8:
    raise ImageDecodeError(
      f'{what}: expected a single-channel uint8 label PNG, got shape {img.shape} dtype {img.dtype}'
    )
  return img


def encode_jpeg(image_rgb: np.ndarray, quality: int = 90) -> bytes:
  """(H, W, 3) uint8 RGB -> baseline JPEG bytes (4:2:0, the given quality)."""
  image_rgb = np.asarray(image_rgb)
  if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[-1] != 3:
    raise ValueError(
      f'encode_jpeg: expected (H, W, 3) uint8, got {image_rgb.shape} {image_rgb.dtype}'
    )
  ok, buf = cv2.imencode(
    '.jpg', cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
  )
  if not ok:
    raise ValueError('encode_jpeg: OpenCV failed to encode')
  return buf.tobytes()


def encode_png(image: np.ndarray) -> bytes:
  """(H, W) uint8 labels or (H, W, 3) uint8 RGB -> PNG bytes (lossless)."""
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim not in (2, 3):
    raise ValueError(f'encode_png: expected uint8 (H, W[, 3]), got {image.shape} {image.dtype}')
  if image.ndim == 3:
    image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
  ok, buf = cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
  if not ok:
    raise ValueError('encode_png: OpenCV failed to encode')
  return buf.tobytes()


# ---------------------------------------------------------------------------------------------
# Cameras and crop matrices


def check_intrinsics(K: np.ndarray, what: str = 'K') -> np.ndarray:
  """Returns K (3, 3) as float64 if it is finite and invertible, else raises CameraError naming it.

  Invertible here means |det K| > 1e-9 * max|K|^3 (a pixel camera has det = fx fy ~ 1e6).
  """
  K = np.asarray(K, np.float64)
  if K.shape != (3, 3):
    raise CameraError(f'{what}: expected a (3, 3) intrinsics matrix, got shape {K.shape}')
  if not np.isfinite(K).all():
    raise CameraError(f'{what}: intrinsics contain NaN/inf: {K.tolist()}')
  scale = np.abs(K).max()
  det = np.linalg.det(K)
  if scale == 0 or abs(det) <= 1e-9 * scale**3:
    raise CameraError(f'{what}: intrinsics are not invertible (det {det:.3g}): {K.tolist()}')
  return K


def apply_h(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
  """Applies a 3x3 (affine or projective) to points. m: (..., 3, 3); pts: (..., N, 2) -> (..., N, 2)."""
  m, pts = np.asarray(m), np.asarray(pts)
  q = pts @ np.swapaxes(m[..., :2], -1, -2) + m[..., None, :, 2]
  return q[..., :2] / q[..., 2:3]


def project(K: np.ndarray, x_cam: np.ndarray) -> np.ndarray:
  """Pinhole projection through a 3x3 (intrinsics or K_crop). x_cam: (..., J, 3) -> (..., J, 2)."""
  q = np.asarray(x_cam) @ np.swapaxes(np.asarray(K), -1, -2)
  return q[..., :2] / q[..., 2:3]


def pelvis_box(
  root_cam_m: np.ndarray, K: np.ndarray, bbox_mm: float = 2000.0
) -> tuple[np.ndarray, np.ndarray]:
  """EpipolarPose's crop box: a bbox_mm x bbox_mm square centred on the root, facing the camera.

  The square's corners root -+ (bbox_mm / 2, bbox_mm / 2, 0) are projected through K (the official
  `from_worldjt_to_imagejt`); for a pinhole K the centre is the root's projection and the size is
  (fx, fy) * bbox / Z_root.

  Args:
    root_cam_m: (3,) root joint, camera frame, metres (Z > 0).
    K: (3, 3) intrinsics, pixels.
    bbox_mm: side of the square in mm (2000 in the paper).

  Returns:
    center (2,) pixels, size (2,) (width, height) pixels, float64.
  """
  root = np.asarray(root_cam_m, np.float64)
  half = np.array([bbox_mm / 2000.0, bbox_mm / 2000.0, 0.0])
  lt, rb = project(np.asarray(K, np.float64), np.stack([root - half, root + half]))
  return (lt + rb) / 2, rb - lt


def crop_matrix(
  center: Sequence[float],
  size: Sequence[float],
  out_size: int | Sequence[int],
  scale: float = 1.0,
  rot_deg: float = 0.0,
) -> np.ndarray:
  """The crop affine of EpipolarPose (`gen_trans_from_patch_cv`), as a 3x3 float64.

  Three points of the source box (centre, centre + half height down, centre + half width right),
  the box enlarged by `scale` and rotated by `rot_deg` about its centre, map to the same three
  points of the output patch (centre (W/2, H/2), no half-pixel shift). In closed form:
  `x_crop = diag(W / (w s), H / (h s)) R(-rot) (x - c) + (W/2, H/2)`, with R(a) the rotation by a
  in image coordinates (x right, y down). A positive angle turns the content counter-clockwise
  on screen.

  Args:
    center: (2,) box centre, full-image pixels.
    size: (2,) box (width, height), pixels.
    out_size: patch size (W = H) or (W, H).
    scale: box enlargement (> 1 zooms out).
    rot_deg: rotation of the source box, degrees.

  Returns:
    (3, 3) crop_from_full, last row (0, 0, 1).
  """
  ow, oh = (out_size, out_size) if np.isscalar(out_size) else out_size
  w, h = float(size[0]) * scale, float(size[1]) * scale
  if not (w > 0 and h > 0):
    raise ValueError(f'crop_matrix: box size must be positive, got {tuple(size)} x scale {scale}')
  a = np.deg2rad(rot_deg)
  rot_inv = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # R(-a)
  lin = np.diag([ow / w, oh / h]) @ rot_inv
  m = np.eye(3)
  m[:2, :2] = lin
  m[:2, 2] = np.array([ow / 2, oh / 2]) - lin @ np.asarray(center, np.float64)
  return m


def flip_matrix(out_size: int | Sequence[int]) -> np.ndarray:
  """Mirror of a crop about its vertical centre line x = W / 2 (the patch centre): (3, 3)."""
  ow = out_size if np.isscalar(out_size) else out_size[0]
  return np.array([[-1.0, 0.0, float(ow)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def is_affine(m: np.ndarray, tol: float = 1e-12) -> bool:
  """Whether a 3x3's last row is (0, 0, 1)."""
  m = np.asarray(m)
  return bool(np.abs(m[2] - (0.0, 0.0, 1.0)).max() <= tol)


def warp(
  image: np.ndarray,
  crop_from_full: np.ndarray,
  size: int | Sequence[int],
  *,
  nearest: bool = False,
  border_value: int = 0,
) -> np.ndarray:
  """Samples a crop: out[y, x] = image[crop_from_full^-1 (x, y)].

  Affine matrices use `cv2.warpAffine`, projective ones `cv2.warpPerspective`; bilinear (images)
  or nearest (labels, `nearest=True`); pixels from outside the image are `border_value`.

  Args:
    image: (H, W, C) or (H, W) uint8 (or float32).
    crop_from_full: (3, 3) full-image px -> crop px.
    size: W = H, or (W, H), of the output.

  Returns:
    (size_h, size_w[, C]) of the input dtype.
  """
  ow, oh = (size, size) if np.isscalar(size) else size
  flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
  m = np.asarray(crop_from_full, np.float64)
  kw = dict(flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=(border_value,) * 4)
  if is_affine(m):
    return cv2.warpAffine(image, m[:2], (int(ow), int(oh)), **kw)
  return cv2.warpPerspective(image, m, (int(ow), int(oh)), **kw)


# ---------------------------------------------------------------------------------------------
# Augmentation


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """One view's augmentation draw.

  Attributes:
    scale: box enlargement (1 = none).
    rot_deg: in-plane rotation, degrees.
    color: (3,) per-channel RGB factors (1 = none).
    occlusion_seed: seed of the synthetic occluders, -1 for none.
    crop_seed: seed for crops that draw their own randomness (e.g. PersPose's centre jitter), -1
      when nothing may be random (evaluation).
  """

  scale: float = 1.0
  rot_deg: float = 0.0
  color: tuple[float, float, float] = (1.0, 1.0, 1.0)
  occlusion_seed: int = -1
  crop_seed: int = -1


NO_AUGMENTATION = Augmentation()


def sample_augmentation(
  rng: np.random.Generator,
  scale_aug: float = 0.25,
  rot_aug_deg: float = 30.0,
  rot_prob: float = 0.6,
  color_aug: float = 0.2,
  occlusion: float = 0.0,
) -> Augmentation:
  """EpipolarPose's draw (research/epipolarpose.md §6; official `do_augmentation`).

  scale = 1 + scale_aug * clip(N(0, 1), -1, 1); rotation = rot_aug_deg * clip(N(0, 1), -2, 2)
  with probability rot_prob, else 0; colour = U(1 - color_aug, 1 + color_aug) per channel;
  occluders with probability `occlusion`. Every draw is made even when its factor is 0, so
  changing one setting does not shift the others' random streams.
  """
  s = float(np.clip(rng.standard_normal(), -1.0, 1.0)) * scale_aug + 1.0
  r = float(np.clip(rng.standard_normal(), -2.0, 2.0)) * rot_aug_deg
  use_rot = rng.random() < rot_prob
  color = rng.uniform(1.0 - color_aug, 1.0 + color_aug, size=3)
  occ_seed = int(rng.integers(0, 2**31 - 1))
  use_occ = rng.random() < occlusion
  return Augmentation(
    scale=s,
    rot_deg=r if use_rot else 0.0,
    color=tuple(float(c) for c in color),
    occlusion_seed=occ_seed if use_occ else -1,
    crop_seed=int(rng.integers(0, 2**31 - 1)),
  )


def color_scale(image_u8: np.ndarray, color: Sequence[float]) -> np.ndarray:
  """Per-channel multiply, clipped to [0, 255] and rounded: (H, W, 3) uint8 -> uint8.

  Done as a per-channel lookup table (cv2.LUT), the same numbers as rint(clip(x * c)).
  """
  if tuple(color) == (1.0, 1.0, 1.0):
    return image_u8
  levels = np.arange(256, dtype=np.float32)[:, None] * np.asarray(color, np.float32)
  lut = np.clip(np.rint(levels), 0, 255).astype(np.uint8).reshape(256, 1, 3)
  return cv2.LUT(np.ascontiguousarray(image_u8), lut)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
  """A random procedural (h, w, 3) uint8 texture: smooth value noise, stripes or a checkerboard."""
  kind = int(rng.integers(3))
  base = rng.integers(0, 256, size=3).astype(np.float32)
  other = rng.integers(0, 256, size=3).astype(np.float32)
  if kind == 0:
    g = rng.random((int(rng.integers(2, 7)), int(rng.integers(2, 7)), 3)).astype(np.float32)
    t = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    img = base + (other - base) * np.clip(t, 0, 1)
  else:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = float(rng.uniform(4, 16))
    if kind == 1:
      a = float(rng.uniform(0, np.pi))
      sel = (np.floor((xx * np.cos(a) + yy * np.sin(a)) / period) % 2)[..., None]
    else:
      sel = ((np.floor(xx / period) + np.floor(yy / period)) % 2)[..., None]
    img = base + (other - base) * sel
  img += rng.normal(0, 6, size=(h, w, 1)).astype(np.float32)  # a little grain
  return np.clip(img, 0, 255).astype(np.uint8)


def occlusion_mask_and_fill(
  seed: int, h: int, w: int, max_count: int = 7
) -> tuple[np.ndarray, np.ndarray]:
  """The synthetic occluders of a seed: (mask (h, w) bool, fill (h, w, 3) uint8).

  1 .. max_count occluders (the official count is randint(1, 8)); each is a rectangle or an
  ellipse, rotated, 0.1 .. 0.5 of the crop side long, at a uniform position, filled with its own
  texture. Each occluder is drawn and textured inside its own bounding box only (cheap).
  """
  rng = np.random.default_rng(seed)
  mask = np.zeros((h, w), bool)
  fill = np.zeros((h, w, 3), np.uint8)
  side = min(h, w)
  for _ in range(int(rng.integers(1, max_count + 1))):
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    ax = rng.uniform(0.05, 0.25, size=2) * side
    ang = float(rng.uniform(0, 180))
    rect = rng.random() < 0.5
    r = int(np.ceil(ax.max())) + 1  # the shape fits in the square of half-side r around (cx, cy)
    x0, y0 = max(int(cx) - r, 0), max(int(cy) - r, 0)
    x1, y1 = min(int(cx) + r + 1, w), min(int(cy) + r + 1, h)
    if x0 >= x1 or y0 >= y1:
      continue
    one = np.zeros((y1 - y0, x1 - x0), np.uint8)
    if rect:
      box = cv2.boxPoints(((cx - x0, cy - y0), (2 * ax[0], 2 * ax[1]), ang))
      cv2.fillPoly(one, [np.round(box).astype(np.int32)], 1)
    else:
      centre = (int(cx) - x0, int(cy) - y0)
      cv2.ellipse(one, centre, (int(ax[0]), int(ax[1])), ang, 0, 360, 1, -1)
    sel = one.astype(bool)
    fill[y0:y1, x0:x1][sel] = _texture(rng, y1 - y0, x1 - x0)[sel]
    mask[y0:y1, x0:x1] |= sel
  return mask, fill


def occlude(image_u8: np.ndarray, seed: int, max_count: int = 7) -> tuple[np.ndarray, np.ndarray]:
  """Pastes the seed's synthetic occluders on a crop. Returns (image (H, W, 3) uint8, mask (H, W))."""
  h, w = image_u8.shape[:2]
  mask, fill = occlusion_mask_and_fill(seed, h, w, max_count)
  out = image_u8.copy()
  out[mask] = fill[mask]
  return out, mask


# ---------------------------------------------------------------------------------------------
# Labels


def flip_lut(names: Sequence[str]) -> np.ndarray:
  """Label permutation of a horizontal flip: left_* <-> right_* by name. (N,) uint8."""
  names = list(names)
  lut = np.arange(len(names), dtype=np.uint8)
  for i, n in enumerate(names):
    for a, b in (('left_', 'right_'), ('right_', 'left_')):
      if n.startswith(a) and b + n[len(a) :] in names:
        lut[i] = names.index(b + n[len(a) :])
  return lut


def crop_labels(
  kp2d_full: np.ndarray,
  vis_full: np.ndarray,
  pose3d_cam_abs: np.ndarray,
  K_full: np.ndarray,
  crop_from_full: np.ndarray,
  size: int | Sequence[int],
  *,
  flip_perm: Sequence[int] | None = None,
  root: int = 0,
) -> dict[str, np.ndarray]:
  """Labels of one crop, consistent with the warped image.

  Args:
    kp2d_full: (J, 2) full-image pixels (undistorted).
    vis_full: (J,) 1 visible / 0 not, in the full image.
    pose3d_cam_abs: (J, 3) camera frame, metres, absolute.
    K_full: (3, 3) intrinsics of the full image.
    crop_from_full: (3, 3) including the flip mirror when `flip_perm` is given.
    size: crop W = H or (W, H), for the inside-the-crop test.
    flip_perm: the layout's flip permutation when the sample is flipped, else None.
    root: root joint index.

  Returns:
    {'kp2d_px' (J, 2) crop pixels, 'kp2d_vis' (J,) 1 if visible and inside [0, W) x [0, H),
     'pose3d_cam' (J, 3) root-relative (mirrored in x and L/R-swapped when flipped),
     'pose3d_root' (1, 3), 'K_crop' (3, 3)}, float32.
  """
  ow, oh = (size, size) if np.isscalar(size) else size
  kp = apply_h(crop_from_full, np.asarray(kp2d_full, np.float64))
  vis = np.asarray(vis_full, np.float64)
  pose = np.asarray(pose3d_cam_abs, np.float64)
  k_crop = np.asarray(crop_from_full, np.float64) @ np.asarray(K_full, np.float64)
  if flip_perm is not None:
    perm = np.asarray(flip_perm)
    kp, vis, pose = kp[perm], vis[perm], pose[perm] * (-1.0, 1.0, 1.0)
    k_crop = k_crop @ FLIP_3D
  inside = (kp[:, 0] >= 0) & (kp[:, 0] < ow) & (kp[:, 1] >= 0) & (kp[:, 1] < oh)
  rootp = pose[root : root + 1]
  return {
    'kp2d_px': kp.astype(np.float32),
    'kp2d_vis': (vis * inside).astype(np.float32),
    'pose3d_cam': (pose - rootp).astype(np.float32),
    'pose3d_root': rootp.astype(np.float32),
    'K_crop': k_crop.astype(np.float32),
  }


def flip_extrinsics(
  R: np.ndarray, t: np.ndarray, pose3d_world: np.ndarray, flip_perm: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Extrinsics and world 3D of a flipped multi-view sample.

  Mirroring every view's image about its own vertical axis is the same as mirroring the world
  (S = diag(-1, 1, 1)) and every camera: X_cam' = diag(-1, 1, 1) X_cam[perm] holds with
  R' = diag(-1, 1, 1) R S (a rotation), t' = diag(-1, 1, 1) t and X_world' = S X_world[perm].

  Args:
    R: (..., 3, 3) world -> camera rotations; t: (..., 3) metres.
    pose3d_world: (J, 3) metres.
    flip_perm: the layout's flip permutation.

  Returns:
    (R', t', pose3d_world').
  """
  R, t = np.asarray(R, np.float64), np.asarray(t, np.float64)
  return (
    FLIP_3D @ R @ FLIP_3D,
    t * (-1.0, 1.0, 1.0),
    np.asarray(pose3d_world, np.float64)[np.asarray(flip_perm)] * (-1.0, 1.0, 1.0),
  )
