"""A z-buffer triangle rasterizer in plain PyTorch (CPU and CUDA), batched over meshes.

Screen convention: vertices arrive as (x, y, z) with x, y in pixels (x right, y down; pixel
(i, j) has its centre at (j + 0.5, i + 0.5)) and z the view depth (smaller is nearer; for
pinhole projection, the positive camera-space distance). :func:`orthographic` and :func:`pinhole`
produce such vertices.

How it is vectorised: each triangle's pixel bounding box is computed; triangles are grouped by
box size into power-of-two buckets k; within a bucket every triangle tests the k x k pixel
centres of its box at once (edge functions), in chunks of bounded memory. Inside fragments go
to a depth buffer through ``scatter_reduce(amin)``; the winning triangle per pixel is the one
whose depth equals the buffer (highest index on exact ties), and its barycentrics are computed
once per pixel. Cost grows with the covered area, not with triangles x pixels.

If ``pytorch3d`` is importable, ``backend="pytorch3d"`` uses its rasterizer with the same
conventions (an equality test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CHUNK_CANDIDATES = 1 << 22
"""Candidate pixel tests per chunk (bounds peak memory to a few hundred MB)."""


@dataclass
class Fragments:
    """Per-pixel rasterization result for B meshes at H x W.

    ``face_index`` (B, H, W) int64, index into the mesh's faces, -1 where nothing is drawn;
    ``bary`` (B, H, W, 3) barycentric weights of the face's vertices (perspective-corrected for
    pinhole input), 0 in the background; ``depth`` (B, H, W) view depth, 0 in the background;
    ``mask`` (B, H, W) bool coverage.
    """

    face_index: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        return self.face_index >= 0


def orthographic(vertices: torch.Tensor, scale: float | torch.Tensor, height: int, width: int,
                 center: tuple[float, float] | torch.Tensor = (0.0, 0.0)) -> torch.Tensor:
    """Orthographic camera looking down -z at model space (x right, y up, z toward viewer).

    ``vertices`` (B, V, 3) or (V, 3); ``scale`` pixels per model unit (scalar or (B,));
    ``center`` the model (x, y) drawn at the image centre. Returns screen vertices of the same
    shape: x, y in pixels, z = -z_model (smaller nearer).
    """
    vertices = torch.as_tensor(vertices)
    scale = torch.as_tensor(scale, dtype=vertices.dtype, device=vertices.device)
    if scale.ndim == 1:
        scale = scale[:, None]
    center = torch.as_tensor(center, dtype=vertices.dtype, device=vertices.device)
    x = (vertices[..., 0] - center[..., 0:1] if center.ndim > 1 else vertices[..., 0] - center[0])
    y = (vertices[..., 1] - center[..., 1:2] if center.ndim > 1 else vertices[..., 1] - center[1])
    return torch.stack([x * scale + width / 2.0, height / 2.0 - y * scale, -vertices[..., 2]], -1)


def pinhole(vertices: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Pinhole projection of camera-space points (OpenCV axes: x right, y down, z forward).

    ``vertices`` (B, V, 3) or (V, 3); ``intrinsics`` (3, 3) or (B, 3, 3) in pixels. Returns
    screen vertices: pixel x, y and z = camera depth.
    """
    vertices = torch.as_tensor(vertices)
    k = torch.as_tensor(intrinsics, dtype=vertices.dtype, device=vertices.device)
    z = vertices[..., 2]
    safe = torch.where(z.abs() > 1e-9, z, torch.full_like(z, 1e-9))
    fx, fy = k[..., 0, 0, None], k[..., 1, 1, None]
    cx, cy = k[..., 0, 2, None], k[..., 1, 2, None]
    return torch.stack([fx * vertices[..., 0] / safe + cx, fy * vertices[..., 1] / safe + cy, z],
                       -1)


def rasterize(screen: torch.Tensor, faces: torch.Tensor, height: int, width: int,
              perspective: bool = False, backend: str = "torch") -> Fragments:
    """Rasterize B meshes sharing one topology.

    ``screen`` (B, V, 3) or (V, 3) screen vertices (see module doc); ``faces`` (F, 3) int64.
    ``perspective``: depth and barycentrics are interpolated perspective-correctly (pinhole
    input; triangles with a vertex at z <= 0 are dropped). ``backend``: ``"torch"`` or
    ``"pytorch3d"`` (needs pytorch3d).
    """
    if screen.ndim == 2:
        screen = screen[None]
    faces = torch.as_tensor(faces, dtype=torch.int64, device=screen.device)
    if backend == "pytorch3d":
        return _rasterize_pytorch3d(screen, faces, height, width, perspective)
    if backend != "torch":
        raise ValueError(f"unknown rasterizer backend {backend!r}")
    return _rasterize_torch(screen, faces, height, width, perspective)


def interpolate(attributes: torch.Tensor, fragments: Fragments, faces: torch.Tensor,
                background: float = 0.0) -> torch.Tensor:
    """Per-pixel attributes (B, H, W, C) from vertex attributes (B, V, C) or (V, C)."""
    faces = torch.as_tensor(faces, dtype=torch.int64, device=fragments.bary.device)
    b, h, w = fragments.face_index.shape
    if attributes.ndim == 2:
        attributes = attributes[None].expand(b, -1, -1)
    mask = fragments.mask
    safe = fragments.face_index.clamp(min=0)
    corner_ids = faces[safe]  # (B, H, W, 3)
    batch = torch.arange(b, device=faces.device)[:, None, None, None]
    corner_attr = attributes[batch, corner_ids]  # (B, H, W, 3, C)
    out = (fragments.bary.to(attributes.dtype)[..., None] * corner_attr).sum(-2)
    return torch.where(mask[..., None], out, torch.full_like(out, background))


def _edge(ax, ay, bx, by, px, py):
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def _rasterize_torch(screen: torch.Tensor, faces: torch.Tensor, height: int, width: int,
                     perspective: bool) -> Fragments:
    device = screen.device
    b, _, _ = screen.shape
    f = faces.shape[0]
    dtype = torch.float64 if screen.dtype == torch.float64 else torch.float32
    tri = screen.to(dtype)[:, faces]
    tri = tri.reshape(b * f, 3, 3)
    batch = torch.arange(b, device=device).repeat_interleave(f)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    x0 = torch.ceil(x.amin(1) - 0.5).clamp(min=0)
    x1 = torch.floor(x.amax(1) - 0.5).clamp(max=width - 1)
    y0 = torch.ceil(y.amin(1) - 0.5).clamp(min=0)
    y1 = torch.floor(y.amax(1) - 0.5).clamp(max=height - 1)
    area = _edge(x[:, 0], y[:, 0], x[:, 1], y[:, 1], x[:, 2], y[:, 2])
    keep = (x0 <= x1) & (y0 <= y1) & (area.abs() > 1e-12) & torch.isfinite(tri).all((1, 2))
    if perspective:
        keep &= (z > 1e-9).all(1)
    size = torch.maximum(x1 - x0, y1 - y0) + 1
    pixels, depths, owners = [], [], []
    ids = torch.nonzero(keep).squeeze(1)
    if ids.numel():
        bucket = torch.ceil(torch.log2(size[ids].clamp(min=1))).long()
        for level in torch.unique(bucket).tolist():
            members = ids[bucket == level]
            k = 1 << level
            per_chunk = max(1, CHUNK_CANDIDATES // (k * k))
            offsets = torch.arange(k, device=device, dtype=tri.dtype)
            dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
            dx, dy = dx.reshape(1, -1), dy.reshape(1, -1)
            for start in range(0, members.numel(), per_chunk):
                t = members[start:start + per_chunk]
                px = x0[t, None] + dx
                py = y0[t, None] + dy
                valid = (px <= x1[t, None]) & (py <= y1[t, None])
                w0, w1, w2 = _weights(x[t], y[t], area[t], px + 0.5, py + 0.5)
                inside = valid & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
                row, col = torch.nonzero(inside, as_tuple=True)
                tz = z[t][row]
                a, b_, c = w0[row, col], w1[row, col], w2[row, col]
                if perspective:
                    d = 1.0 / (a / tz[:, 0] + b_ / tz[:, 1] + c / tz[:, 2])
                else:
                    d = a * tz[:, 0] + b_ * tz[:, 1] + c * tz[:, 2]
                tri_id = t[row]
                flat = (batch[tri_id] * height + py[row, col].long()) * width + px[row, col].long()
                pixels.append(flat)
                depths.append(d)
                owners.append(tri_id)
    total = b * height * width
    face_buf = torch.full((total,), -1, dtype=torch.int64, device=device)
    if pixels:
        pix, dep, own = torch.cat(pixels), torch.cat(depths), torch.cat(owners)
        zbuf = torch.full((total,), torch.inf, dtype=dep.dtype, device=device)
        zbuf.scatter_reduce_(0, pix, dep, reduce="amin")
        win = dep == zbuf[pix]
        face_buf.scatter_reduce_(0, pix[win], own[win], reduce="amax")
    covered = face_buf >= 0
    bary = torch.zeros(total, 3, dtype=tri.dtype, device=device)
    depth = torch.zeros(total, dtype=tri.dtype, device=device)
    where = torch.nonzero(covered).squeeze(1)
    if where.numel():
        t = face_buf[where]
        col = (where % width).to(tri.dtype) + 0.5
        row = ((where // width) % height).to(tri.dtype) + 0.5
        w = torch.stack(_weights(x[t], y[t], area[t], col[:, None], row[:, None]), -1)[:, 0]
        w = w.clamp(min=0)
        w = w / w.sum(-1, keepdim=True)
        if perspective:
            w = w / z[t]
            depth[where] = 1.0 / w.sum(-1)
            w = w / w.sum(-1, keepdim=True)
        else:
            depth[where] = (w * z[t]).sum(-1)
        bary[where] = w
    face_buf = torch.where(covered, face_buf % f, face_buf)
    return Fragments(
        face_index=face_buf.reshape(b, height, width),
        bary=bary.reshape(b, height, width, 3).to(screen.dtype),
        depth=depth.reshape(b, height, width).to(screen.dtype),
    )


def _weights(x, y, area, px, py):
    """Barycentric weights of pixel centres (px, py) (N, K) in triangles x, y (N, 3)."""
    xa, ya = x[:, 0:1], y[:, 0:1]
    xb, yb = x[:, 1:2], y[:, 1:2]
    xc, yc = x[:, 2:3], y[:, 2:3]
    inv = 1.0 / area[:, None]
    w0 = _edge(xb, yb, xc, yc, px, py) * inv
    w1 = _edge(xc, yc, xa, ya, px, py) * inv
    return w0, w1, 1.0 - w0 - w1


def pytorch3d_available() -> bool:
    try:
        import pytorch3d.renderer  # noqa: F401
    except ImportError:
        return False
    return True


def _rasterize_pytorch3d(screen: torch.Tensor, faces: torch.Tensor, height: int, width: int,
                         perspective: bool) -> Fragments:
    """pytorch3d's rasterizer under this module's conventions (NDC: +x left, +y up)."""
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    short = float(min(height, width))
    ndc = torch.stack([(width - 2.0 * screen[..., 0]) / short,
                       (height - 2.0 * screen[..., 1]) / short, screen[..., 2]], -1)
    b = screen.shape[0]
    meshes = Meshes(verts=list(ndc.float()), faces=[faces] * b)
    pix_to_face, zbuf, bary, _ = rasterize_meshes(
        meshes, image_size=(height, width), blur_radius=0.0, faces_per_pixel=1,
        perspective_correct=perspective, cull_backfaces=False)
    index = pix_to_face[..., 0]
    covered = index >= 0
    f = faces.shape[0]
    return Fragments(
        face_index=torch.where(covered, index % f, index),
        bary=torch.where(covered[..., None], bary[..., 0, :], 0.0).to(screen.dtype),
        depth=torch.where(covered, zbuf[..., 0], 0.0).to(screen.dtype),
    )
