"""Cameras for the soft rasteriser: SoftRas's `projection` mode and DSR's NMR-style y-flip.

SoftRas (Liu et al., "Soft Rasterizer", ICCV 2019, arXiv 1904.01786; github.com/ShichenLiu/SoftRas,
master at b569bed, `soft_renderer/functional/projection.py`) takes a (B, 3, 4) matrix P and maps
a vertex X to

    (x, y, z) = P [X; 1],   u = x / (z + 1e-5),   v = y / (z + 1e-5)
    screen = (2 (u - orig_size / 2) / orig_size,  2 (v - orig_size / 2) / orig_size,  z)

The rasteriser then reads screen x as the image column axis (left to right) and screen y as the row
axis **bottom to top** (row 0 of the output is screen y = +1). A P built from OpenCV-style
intrinsics (v grows downwards) would therefore render upside down; DSR (Dwivedi et al., ICCV 2021,
arXiv 2110.03480; github.com/saidwivedi/DSR at 7d55d17, `convert_camT_to_proj_mat`) negates row 1
of [R | t] (the NMR convention): P = K diag(1, -1, 1) [I | t] with K = [[f, 0, S/2], [0, f, S/2],
[0, 0, 1]]. For a principal point at the image centre this is exactly the pixel-space row flip
v -> S - v, so the rendered array's row i holds the image points with v in [i, i + 1).

Pixel-centre convention: pixel (row i, column j) of an S x S SoftRas image is sampled at
u = j + 0.5, v = i + 0.5 in the pixel coordinates of K (pixel corners on integers; DSR's principal
point 112 = S / 2 is the exact image centre). Intrinsics written for the integer-centre convention
(OpenCV, cv2.warpAffine crops) need `pixel_center=0.0` in `projection_matrix`, which shifts the
principal point by half a pixel.

Units: P and K in pixels of the original image (orig_size); screen x, y in SoftRas normalised
device coordinates (the image spans [-1, 1]); screen z = the third row of P (camera depth in the
units of X, metres for bodies, when K's last row is (0, 0, 1)).

Functions accept numpy or jax arrays (numpy in -> numpy out, so host-side dataset code keeps
float64) and broadcast over leading batch axes.
"""

from __future__ import annotations

from jax.typing import ArrayLike

from jaxpose.geometry._array import namespace

# SoftRas adds this to the depth before the perspective division.
PROJECTION_EPS = 1e-5


def dsr_projection_matrix(
  cam_t: ArrayLike, focal_length: float = 5000.0, image_size: int = 224
) -> ArrayLike:
  """DSR's projection matrix: P = K diag(1, -1, 1) [I | cam_t] (the NMR y-flip).

  Args:
    cam_t: (..., 3) camera translation (metres) added to the body vertices, as the HMR regressor's
      weak-perspective camera converted to perspective (t_z = 2 f / (S s)).
    focal_length: f in pixels (DSR and SPIN use 5000).
    image_size: S, the crop size in pixels; the principal point is (S / 2, S / 2).

  Returns:
    (..., 3, 4) projection matrices in pixels, for `project(..., orig_size=image_size)`.
  """
  xp = namespace(cam_t)
  cam_t = xp.asarray(cam_t)
  tx, ty, tz = cam_t[..., 0], cam_t[..., 1], cam_t[..., 2]
  f, c = focal_length, image_size / 2.0
  zero, one = xp.zeros_like(tx), xp.ones_like(tx)
  # Rows of K @ diag(1, -1, 1) @ [I | t], written out.
  row0 = xp.stack([f * one, zero, c * one, f * tx + c * tz], axis=-1)
  row1 = xp.stack([zero, -f * one, c * one, -f * ty + c * tz], axis=-1)
  row2 = xp.stack([zero, zero, one, tz], axis=-1)
  return xp.stack([row0, row1, row2], axis=-2)


def projection_matrix(
  K: ArrayLike,
  image_size: int,
  R: ArrayLike | None = None,
  t: ArrayLike | None = None,
  *,
  pixel_center: float = 0.5,
) -> ArrayLike:
  """P = flip_rows(S) @ shift(0.5 - pixel_center) @ K @ [R | t], for any intrinsics K.

  The row flip v -> S - v makes SoftRas's bottom-up screen y match the top-down rows of an image
  whose intrinsics are K; for zero skew and cy = S / 2 (with `pixel_center=0.5`) P equals
  `dsr_projection_matrix`.

  Args:
    K: (..., 3, 3) intrinsics in pixels of an S x S image (last row (0, 0, 1)).
    image_size: S in pixels (the `orig_size` to pass to `project`).
    R: (..., 3, 3) world -> camera rotation, identity when None.
    t: (..., 3) world -> camera translation (X_cam = R X + t), zero when None.
    pixel_center: where K puts the centre of pixel (0, 0): 0.5 (SoftRas, OpenGL: corners on
      integers) or 0.0 (OpenCV: centres on integers).

  Returns:
    (..., 3, 4) projection matrices.
  """
  xp = namespace(K, *(a for a in (R, t) if a is not None))
  K = xp.asarray(K)
  batch = K.shape[:-2]
  R = xp.broadcast_to(xp.eye(3, dtype=K.dtype), batch + (3, 3)) if R is None else xp.asarray(R)
  t = xp.zeros(batch + (3,), dtype=K.dtype) if t is None else xp.asarray(t)
  shift = 0.5 - pixel_center
  flip = xp.asarray(
    [[1.0, 0.0, shift], [0.0, -1.0, image_size - shift], [0.0, 0.0, 1.0]], dtype=K.dtype
  )
  rt = xp.concatenate([R, t[..., :, None]], axis=-1)
  return flip @ K @ rt


def project(vertices: ArrayLike, P: ArrayLike, orig_size: float) -> ArrayLike:
  """SoftRas `projection`: vertices to screen coordinates (no lens distortion).

  Args:
    vertices: (..., V, 3) points (metres) in the frame P expects.
    P: (..., 3, 4) projection matrices (pixels), broadcast against the vertices' batch axes.
    orig_size: the image size P is written for, in pixels.

  Returns:
    (..., V, 3): screen x (columns, -1 left edge, +1 right edge), screen y (rows, +1 = row 0), and
    the depth z (the third row of P applied to [X; 1]).
  """
  xp = namespace(vertices, P)
  vertices, P = xp.asarray(vertices), xp.asarray(P)
  hom = vertices @ xp.swapaxes(P[..., :, :3], -1, -2) + P[..., None, :, 3]
  z = hom[..., 2]
  scale = 2.0 / orig_size
  x = (hom[..., 0] / (z + PROJECTION_EPS) - orig_size / 2.0) * scale
  y = (hom[..., 1] / (z + PROJECTION_EPS) - orig_size / 2.0) * scale
  return xp.stack([x, y, z], axis=-1)


def pixel_centers(image_size: int, xp=None) -> tuple[ArrayLike, ArrayLike]:
  """Screen coordinates of the pixel centres of an S x S SoftRas image.

  Returns:
    (x (S,), y (S,)): x[j] = (2 j + 1 - S) / S for column j, y[i] = (S - 1 - 2 i) / S for row i.
  """
  import numpy as np

  xp = np if xp is None else xp
  idx = xp.arange(image_size, dtype=xp.float32 if xp is not np else np.float64)
  x = (2.0 * idx + 1.0 - image_size) / image_size
  return x, -x
