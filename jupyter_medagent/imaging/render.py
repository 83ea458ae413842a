"""Slice montages with label/prediction contours, as PNG bytes for a model and inline for a notebook.

Numpy + PIL only: matplotlib takes ~0.8 s for the same montage, too slow to render
every case a judge should look at. Panels keep the physical aspect ratio (from the
voxel spacing) and carry orientation letters from the affine, so a flipped axis is
visible to a reader or a vision model.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jupyter_medagent.imaging.volume import Volume

MAX_IMAGE_SIDE = 768  # px; what downsample() shrinks to: a montage stays legible for a model, ~500 image tokens

PALETTE = [
    (255, 80, 80), (80, 220, 255), (255, 215, 0), (90, 255, 90),
    (255, 120, 255), (255, 160, 60), (160, 130, 255), (255, 255, 255),
]
OPPOSITE = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}
PANEL_HEIGHT = 240  # px; panels are scaled to this height, keeping physical aspect
THICK_SLICE_ANISOTROPY = 3.0
MAX_SHORT_AXIS_PANELS = 8


@dataclass(repr=False)
class Montage:
    png: bytes
    width: int
    height: int
    title: str = ""

    def __repr__(self) -> str:  # the PNG is the content; its bytes are no use as text
        return f"<Montage {self.title!r} {self.width}x{self.height} px>"

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path) -> None:
        """Write the montage's PNG.

        Args:
            path: file to write (a .png name in the run's output folder).

        Returns:
            None.
        """
        with open(path, "wb") as handle:
            handle.write(self.png)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType support
        return ImageFont.load_default()


def _as_array_and_affine(volume, spacing) -> tuple[np.ndarray | None, np.ndarray | None]:
    if volume is None:
        return None, None
    if isinstance(volume, Volume):
        array, affine = np.asarray(volume.array), volume.affine
    else:
        array = np.asarray(volume)
        affine = np.diag(list(spacing or (1.0, 1.0, 1.0))[:3] + [1.0])
    if array.ndim == 2:
        array = array[..., np.newaxis]
    if array.ndim == 4 and array.shape[2] == 1 and array.shape[3] in (3, 4):
        return array[..., :3], affine  # an RGB picture (x, y, 1, colour)
    if array.ndim != 3:
        raise ValueError(f"render_montage needs a 2D or 3D array, got shape {array.shape} (pick one frame of 4D data)")
    return array, affine


def render_montage(image, label=None, prediction=None, *, spacing=None, title=None, label_names=None,
                   max_width: int = 1024) -> Montage:
    """Montage of ``image`` with reference (solid) and predicted (dashed) contours per label value.

    Isotropic data: axial, coronal and sagittal slices through the centre of the labelled region.
    Thick-slice data (anisotropy > 3): up to 8 slices across the labelled range of the thick axis.

    Args:
        image: a Volume or a 3D array.
        label: reference label map (Volume or array, the image's grid), drawn solid; None for none.
        prediction: predicted label map, drawn dashed; None for none.
        spacing: voxel size in mm when ``image`` is an array (a Volume brings its own).
        title: the caption above the panels.
        label_names: {label value: name} for the legend.
        max_width: the PNG's largest width in pixels.

    Returns:
        Montage (``png`` bytes, ``width``, ``height``, ``title``); displayed when it is a cell's last value.
    """
    img, affine = _as_array_and_affine(image, spacing)
    colour = img if img.ndim == 4 else None  # shown in colour; windows and panels come from its grey values
    if colour is not None:
        img = colour.astype(np.float32).mean(axis=3)
    ref, _ = _as_array_and_affine(label, spacing)
    pred, _ = _as_array_and_affine(prediction, spacing)
    for name, other in (("label", ref), ("prediction", pred)):
        if other is not None and other.shape != img.shape:
            raise ValueError(f"{name} shape {other.shape} does not match image shape {img.shape}")
    ref = None if ref is None else _as_label_map(ref)
    pred = None if pred is None else _as_label_map(pred)
    voxel = nib.affines.voxel_sizes(affine)
    codes = nib.aff2axcodes(affine)
    lo, hi = _window(img)
    values = sorted({v for arr in (ref, pred) if arr is not None for v in _label_values(arr) if v != 0})
    colours = {v: PALETTE[(v - 1) % len(PALETTE)] for v in values}
    focus = ref if ref is not None and ref.any() else pred

    panels = []
    for axis_h, axis_v, take, caption in _panel_plan(img.shape, voxel, focus):
        grey = _to_uint8(take(img), lo, hi)
        width = max(1, round(PANEL_HEIGHT * grey.shape[0] * voxel[axis_h] / (grey.shape[1] * voxel[axis_v])))
        size = (min(width, 3 * PANEL_HEIGHT), PANEL_HEIGHT)
        # Voxel (h, v) -> display column h, row v counted from the bottom, so +v points up.
        if colour is not None:
            rgb = np.clip(take(colour), 0, 255).astype(np.uint8) if colour.dtype == np.uint8 else \
                _to_uint8(take(colour), lo, hi)
            panel = Image.fromarray(np.ascontiguousarray(np.transpose(rgb, (1, 0, 2))[::-1]), "RGB").resize(size, Image.BILINEAR)
        else:
            panel = Image.fromarray(np.ascontiguousarray(grey.T[::-1]), "L").resize(size, Image.BILINEAR).convert("RGB")
        canvas = np.asarray(panel).copy()
        for arr, dashed in ((ref, False), (pred, True)):
            if arr is not None:
                _draw_contours(canvas, take(arr), size, colours, dashed)
        panel = Image.fromarray(canvas)
        _letters(panel, codes[axis_h], codes[axis_v], caption)
        panels.append(panel)
    return _compose(panels, title, label_names, colours, ref is not None, pred is not None, max_width)


def _as_label_map(arr: np.ndarray) -> np.ndarray:
    """int16 label values; float label files are rounded (integer ones skip the costly rint)."""
    return arr.astype(np.int16) if np.issubdtype(arr.dtype, np.integer) else np.rint(arr).astype(np.int16)


def _label_values(label: np.ndarray) -> list[int]:
    """Values present in an int16 label map; a bincount over its uint16 view is ~2x faster than np.unique."""
    present = np.flatnonzero(np.bincount(label.ravel().view(np.uint16)))
    return [int(v) for v in present.astype(np.uint16).view(np.int16)]


def _window(img: np.ndarray) -> tuple[float, float]:
    sample = img.ravel()[:: max(1, img.size // 500_000)].astype(np.float32)
    lo, hi = np.percentile(sample, [1, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1)


def _to_uint8(plane: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = (plane.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _panel_plan(shape, voxel, focus):
    """(horizontal axis, vertical axis, slicer, caption) per panel."""
    if shape[2] == 1:  # a 2D picture or a single slice: the one plane there is
        return [(0, 1, _slicer(2, 0), "2D")]
    if focus is not None and focus.any():
        occupied = [np.flatnonzero(focus.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
        centre = [int((o[0] + o[-1]) // 2) for o in occupied]
    else:
        occupied = [np.arange(n) for n in shape]
        centre = [n // 2 for n in shape]
    thick = int(np.argmax(voxel))
    if voxel[thick] / min(voxel) > THICK_SLICE_ANISOTROPY:
        in_plane = [a for a in range(3) if a != thick]
        span = occupied[thick]
        picks = np.unique(np.linspace(span[0], span[-1], min(MAX_SHORT_AXIS_PANELS, len(span))).round().astype(int))
        return [(in_plane[0], in_plane[1], _slicer(thick, k), f"slice {k}") for k in picks]
    plan = []
    for fixed, caption in ((2, "axial"), (1, "coronal"), (0, "sagittal")):
        rest = [a for a in range(3) if a != fixed]
        plan.append((rest[0], rest[1], _slicer(fixed, centre[fixed]), f"{caption} {centre[fixed]}"))
    return plan


def _slicer(axis: int, index: int):
    def take(arr: np.ndarray) -> np.ndarray:
        return np.take(arr, index, axis=axis)

    return take


def _draw_contours(canvas: np.ndarray, plane: np.ndarray, size, colours, dashed: bool) -> None:
    if not plane.any():
        return
    # Upscale the labels first (nearest), then trace: 1-pixel lines at display resolution.
    big = np.asarray(Image.fromarray(np.ascontiguousarray(plane.T[::-1]).astype(np.uint8), "L").resize(size, Image.NEAREST))
    edge = np.zeros(big.shape, dtype=bool)
    edge[:-1, :] |= big[:-1, :] != big[1:, :]
    edge[:, :-1] |= big[:, :-1] != big[:, 1:]
    edge &= big > 0
    if dashed:
        rows, cols = np.indices(big.shape)
        edge &= ((rows + cols) // 4) % 2 == 0
    for value, colour in colours.items():
        canvas[edge & (big == value)] = colour


def _letters(panel: Image.Image, code_h: str, code_v: str, caption: str) -> None:
    draw = ImageDraw.Draw(panel)
    font = _font(14)
    w, h = panel.size
    for text, xy in ((code_v, (w // 2 - 4, 2)), (OPPOSITE[code_v], (w // 2 - 4, h - 18)),
                     (OPPOSITE[code_h], (3, h // 2 - 8)), (code_h, (w - 12, h // 2 - 8))):
        draw.text(xy, text, fill=(255, 255, 0), font=font)
    draw.text((4, 2), caption, fill=(200, 200, 200), font=_font(11))


def _compose(panels, title, label_names, colours, has_ref, has_pred, max_width) -> Montage:
    gap = 4
    columns = len(panels) if len(panels) <= 4 else (len(panels) + 1) // 2  # two rows for short-axis stacks
    rows = [panels[i : i + columns] for i in range(0, len(panels), columns)]
    width = max(sum(p.size[0] for p in row) + gap * (len(row) - 1) for row in rows)
    grid_h = len(rows) * PANEL_HEIGHT + gap * (len(rows) - 1)
    title_h = 24 if title else 0
    legend_h = 22 if colours else 0
    sheet = Image.new("RGB", (width, title_h + grid_h + legend_h), (0, 0, 0))
    for r, row in enumerate(rows):
        x = 0
        for panel in row:
            sheet.paste(panel, (x, title_h + r * (PANEL_HEIGHT + gap)))
            x += panel.size[0] + gap
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((6, 4), title, fill=(255, 255, 255), font=_font(15))
    if colours:
        x, y = 6, title_h + grid_h + 4
        font = _font(12)
        for value, colour in colours.items():
            name = (label_names or {}).get(value, str(value))
            draw.rectangle([x, y + 2, x + 10, y + 12], fill=colour)
            text = f"{value} {name}" if str(value) != str(name) else str(value)
            draw.text((x + 14, y), text, fill=(255, 255, 255), font=font)
            x += 24 + int(draw.textlength(text, font=font))
        styles = [s for s, present in (("solid = reference", has_ref), ("dashed = prediction", has_pred)) if present]
        draw.text((x + 10, y), ", ".join(styles), fill=(180, 180, 180), font=font)
    if sheet.size[0] > max_width:
        scale = max_width / sheet.size[0]
        sheet = sheet.resize((max_width, max(1, round(sheet.size[1] * scale))), Image.BILINEAR)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", compress_level=1)
    return Montage(buffer.getvalue(), sheet.size[0], sheet.size[1], title or "")


def downsample(png: bytes, max_side: int = MAX_IMAGE_SIDE) -> bytes:
    """``png`` shrunk to fit ``max_side`` pixels (aspect kept), as what is sent to a model or shown small."""
    image = Image.open(io.BytesIO(png))
    if max(image.size) <= max_side:
        return png
    image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
