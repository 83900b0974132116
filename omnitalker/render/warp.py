"""Training-free face renderer: a reference image + driven 478-point landmarks -> video frames.

`WarpRenderer` is the pipeline's default renderer. It has no weights: it warps the
reference image so that its MediaPipe Face Mesh landmarks land on the driven ones, and draws what
a warp alone cannot show (the inside of an opening mouth, irises that move inside the eye opening).

    renderer = WarpRenderer(output_size=512)
    source = renderer.prepare_source(reference, max_side=1024)     # a pipeline's OmniTalkerReference, once
    frames = renderer.render_codes(source, codes)                  # (T, 58) codes -> (T, H, W, 3) uint8
    state = renderer.prepare(image, landmarks)                     # lower level: (H, W, 3) uint8, (478, 3) px
    state = renderer.prepare(image, landmarks, frames, frame_landmarks)  # + a reference clip's frames
    frames = renderer.render(state, landmarks_sequence)            # (T, 478, 3) px -> (T, H, W, 3) uint8

The pipeline hands it codes (``render_codes``); the codes are decoded to landmarks of the reference face
(``omnitalker.frontend.face.decode_codes``) here, on the renderer's side.

How one frame is made (`render_frame`):
1. A square crop around the reference face (fixed for the whole video) is rendered at
   min(`output_size`, the crop's own size in the frame)^2 (never upsampled, so a small face is not blurred
   by a resample up and back down) and pasted back into the full frame with a feathered mask.
2. Backward dense warp, piecewise affine. Triangles: MediaPipe's face tessellation (852 triangles),
   its mouth and eye openings closed with triangle strips, bands from the face oval to two rings around
   the head (hair, neck), and a Delaunay mesh from the outer ring to fixed anchors on the crop border, so
   the background stays still. The rings follow the head's 3D similarity transform (fitted to the rigid
   landmarks) only by `ring_follow` (below the chin by `neck_follow` of that), fully where partly would fold
   a triangle. Face triangles turned away from the camera are culled; the rest are rasterised far-to-near
   (painter's algorithm on the landmark depth) into a triangle-index image on a coarse grid; each pixel's
   source position is its triangle's affine map, upsampled to full size and applied with one `cv2.remap`.
   An eye closed in the reference stays closed (``keep_closed_eyes``). With ``keep_background``, pixels whose
   warp samples the background show the still reference there instead (person segmentation,
   ``omnitalker/render/segment.py``): walls and cabinets behind a moving head no longer bend with it.
3. Layers over the warp, anti-aliased at their contours (``omnitalker/render/layers.py``), sampled from
   an *atlas* (the reference image with small textures appended to its right):
   - the mouth interior (``omnitalker/render/mouth.py``): from the reference clip's own open-mouth frames,
     the one shaped most like the driven mouth; for a photo, strips of its own interior, or procedural teeth
     fixed to the skull and the jaw (they move with the head pose, ``head_pose``), uncovered by the lips;
   - the eyes (``omnitalker/render/eyes.py``): lid skin over what a closing lid covers, the eyeball with its
     iris removed, and the iris disc at its driven place; with a reference clip, an eye closing or opening wide
     gets its lids, lashes and crease from the clip's frame where that eye was opened most like it
     (``omnitalker/render/eye_bank.py``).

Run `python bench/renderer.py` for frames/s; `python -m omnitalker.eval.reenact --clips DIR` for the renderer
on real people (self-reenactment); `python -m omnitalker.eval.closed_loop` for the round trip
codes -> render -> landmarks -> codes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from diffusers.configuration_utils import ConfigMixin, register_to_config
from scipy.ndimage import distance_transform_edt
from scipy.spatial import Delaunay
from transformers import FeatureExtractionMixin

from omnitalker.frontend.face.codes import decode_codes
from omnitalker.frontend.face.template import load_face_template
from omnitalker.io.image import fit_within
from omnitalker.render.checks import check_frames as _check_frames
from omnitalker.render.checks import check_image as _check_image
from omnitalker.render.checks import check_landmarks as _check_landmarks
from omnitalker.render.eye_bank import bank_entries as eye_bank_entries
from omnitalker.render.eyes import MIN_EYE_OPENING, EyeReference, eye_layers, eye_textures
from omnitalker.render.geometry import (  # noqa: F401  (re-exported: the renderer's public names)
    NUM_FACE_TRIANGLES,
    NUM_LANDMARKS,
    NUM_MESH_VERTICES,
    SUBPIXEL_BITS,
    SUBPIXEL_SCALE,
    LipFrame,
    Similarity,
    median_color,
    mesh_topology,
    polygon_mask,
    split_loop,
    strip_triangles,
)
from omnitalker.render.layers import composite
from omnitalker.render.mouth import (
    MouthReference,
    bank_entries,
    draws_teeth,
    mouth_layers,
    own_interior_strips,
    teeth_anchors,
    teeth_strips,
)
from omnitalker.render.segment import keep_background, plate_with_mask

NECK_START, NECK_RAMP = 0.3, 0.5  # ring points this far towards "straight down" (cosine) follow less
RING_INSET = 0.95  # rings are kept inside this fraction of the crop half-size
RING_RESIDUAL_SHARE = 0.6  # rings follow this share of the non-rigid motion of the face outline (jaw)
DEGENERATE_AREA = 1e-6  # |det| below this (grid px^2): the triangle has collapsed (closed lid or lips)
# A grid cell samples at most this far (reference px) outside the source box of the triangle it was drawn for. A
# sliver triangle (nearly collapsed, beside a nostril of a head tilting back) claims cells whose centres lie off it,
# and its affine map, extrapolated there, reached the image's left edge: orange 2 px squares on the nose (shared clip
# d12 as a video reference).
SOURCE_BOX_MARGIN = 2.0
ATLAS_PAD = 2  # replicated border around each atlas texture, so bilinear sampling never bleeds
DEFAULT_SKIN = np.array([180.0, 140.0, 120.0])  # RGB, if the face oval holds no pixel


# --------------------------------------------------------------------------------------------------
# The precomputed reference


@dataclass
class RenderReference:
    """Everything `WarpRenderer.render` reuses across frames of one reference image."""

    image: np.ndarray  # (H, W, 3) uint8
    atlas: np.ndarray  # (Ha, Wa, 3) uint8: the image, textures appended on the right
    landmarks: np.ndarray  # (478, 3) float32, frame px
    crop_origin: np.ndarray  # (2,) frame px of the crop's top-left corner
    crop_size: int  # S: side of the crop box in frame px
    render_size: int  # side of the rendered crop (px): min(output_size, S)
    triangles: np.ndarray  # (F, 3) vertex indices; the outer (background) ones first
    num_outer: int  # how many of `triangles` are outer ones (drawn first)
    source_vertices: np.ndarray  # (V, 2) frame px: landmarks, ring points, border anchors
    ring_points3d: np.ndarray  # (R, 3) frame px
    ring_follow: np.ndarray  # (R,) how much each ring point follows the head
    border_vertices: np.ndarray  # (B, 2) crop px (fixed)
    stable: np.ndarray  # landmark indices for the rigid head fit
    oval: np.ndarray  # face-outline landmark indices, in the order the rings were built from
    background: np.ndarray  # (6,) affine map crop-grid px -> frame px for pixels no triangle covers
    eyes: tuple[EyeReference, EyeReference] | None
    mouth: MouthReference | None
    paste_mask: np.ndarray  # (S, S) float32 feathered blending weights
    orientation: np.ndarray  # (F,) +-1: orientation of each triangle in the reference (0: collapsed)
    source_boxes: np.ndarray  # (F + 1, 4): where each triangle may sample (``source_boxes``), the background last
    facing: np.ndarray | None = None  # (NUM_FACE_TRIANGLES,) +-1: each face triangle's orientation seen from the front
    closed_eyes: tuple = ()  # (upper, lower, LipFrame) of each eye closed in the reference
    plate: np.ndarray | None = None  # (H, W, 4) uint8: background plate + person mask (``segment.py``)
    still_plate: np.ndarray | None = None  # (r, r, 3) float32: the plate through the unwarped crop

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]



@dataclass
class RenderSource:
    """A pipeline reference prepared for rendering at one output size (``WarpRenderer.prepare_source``)."""

    size: tuple[int, int]  # (width, height) of the output frames
    scale: tuple[float, float]  # output px per reference px, (x, y)
    identity: object  # the face's FaceIdentity: decodes codes to its landmarks
    state: RenderReference  # what ``prepare`` returned




class WarpRenderer(ConfigMixin, FeatureExtractionMixin):
    """Training-free warp renderer (parameter-free component; only its config is saved).

    Args:
        output_size: side of the face crop rendered per frame (256-512 typical); the crop is pasted back
            into a frame of the reference image's size.
        crop_scale: side of the crop box / size of the face (largest extent of the face oval).
        border_anchors: fixed anchor points per side of the crop border (background stays still there).
        ring_scales: radii of the rings of control points around the face (hair, neck), as multiples of
            the face-oval's distance from the face centre.
        ring_follow: how much each ring follows the head's motion (1 = rigidly, 0 = not at all). Default (0.15, 0.0):
            on the real clips of ``omnitalker.eval.reenact``, hair and shoulders moved with the head's estimated
            motion cost more than left in place (face PSNR 24.39 dB at (1.0, 0.5), 25.17 at (0.5, 0.0), six clips,
            80 frames each; gain over the still frame +1.36 dB at (0.5, 0.0), +1.56 at (0.3, 0.0) and at (0.0, 0.0),
            +1.62 at (0.15, 0.0) with ``neck_follow`` 0, five clips, 60 frames). A ring follows fully wherever
            following partly would fold a triangle.
        neck_follow: extra factor for ring points below the chin (the neck moves less than the head; default 0: the
            shoulders and collar stay where they are unless a fold forces them along).
        map_downsample: the warp field is evaluated on a grid this many times coarser, then upsampled.
        mouth_fill: draw the mouth interior (the reference clip's own, or teeth + cavity) when the lips part.
        eye_fill: draw the eyeballs inside the eye openings, slid with the irises (gaze).
        feather: width of the paste-back blend, as a fraction of the crop side.
        keep_background: segment the reference into person and background (``omnitalker/render/segment.py``) and
            keep the background still: only the person (face, hair, ears, neck) moves with the warp.
    """

    # FeatureExtractionMixin: what makes diffusers save and load it with a pipeline (omnitalker/components.py)

    config_name = "renderer_config.json"

    @register_to_config
    def __init__(
        self,
        output_size: int = 512,
        crop_scale: float = 2.4,
        border_anchors: int = 5,
        ring_scales: tuple[float, ...] = (1.3, 1.7),
        ring_follow: tuple[float, ...] = (0.15, 0.0),
        neck_follow: float = 0.0,
        map_downsample: int = 2,
        mouth_fill: bool = True,
        eye_fill: bool = True,
        feather: float = 0.08,
        keep_background: bool = True,
    ):
        if not (isinstance(output_size, int) and 32 <= output_size <= 4096):
            raise ValueError(f"output_size must be an int in [32, 4096] (e.g. 256 or 512), got {output_size!r}")
        if not crop_scale > 1.0:
            raise ValueError(f"crop_scale must be > 1 (the crop must contain the face), got {crop_scale}")
        if len(ring_scales) != len(ring_follow) or not all(1.0 < s < crop_scale for s in ring_scales):
            raise ValueError(f"ring_scales {ring_scales} need one ring_follow each ({ring_follow}) and must lie "
                             f"between the face (1.0) and the crop border (crop_scale = {crop_scale})")
        if not (isinstance(border_anchors, int) and border_anchors >= 2):
            raise ValueError(f"border_anchors must be an int >= 2 (per side), got {border_anchors!r}")
        if not (isinstance(map_downsample, int) and 1 <= map_downsample <= 8):
            raise ValueError(f"map_downsample must be an int in [1, 8], got {map_downsample!r}")
        if not 0.0 <= feather < 0.5:
            raise ValueError(f"feather must be in [0, 0.5), got {feather}")

    # ---------------------------------------------------------------------------------------- config io

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        os.makedirs(save_directory, exist_ok=True)
        self.save_config(save_directory, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, subfolder: str | None = None,
                        **kwargs) -> WarpRenderer:
        """The saved renderer; keyword arguments that name a setting (``eye_fill=False``) override the saved value, the
        others go to ``load_config`` (``cache_dir``, ``local_files_only``, ...)."""
        config, overrides = cls.load_config(pretrained_model_name_or_path, subfolder=subfolder,
                                            return_unused_kwargs=True, **kwargs)
        unknown = sorted(set(overrides) - set(config))
        if unknown:
            raise ValueError(f"WarpRenderer has no setting {', '.join(unknown)}; its settings: "
                             f"{', '.join(k for k in sorted(config) if not k.startswith('_'))}")
        return cls.from_config({**config, **overrides})

    # ------------------------------------------------------------------------------------ the pipeline's contract

    def prepare_source(self, reference, max_side: int | None = None) -> RenderSource:
        """The source of a pipeline reference (``OmniTalkerReference``: its frame, landmarks and face identity, and
        for a video reference some of its frames, ``frames`` / ``frame_landmarks``) at the output size: the frames
        scaled so their longer side is at most `max_side` (never up; None keeps them)."""
        height, width = reference.image.shape[:2]
        size = fit_within(width, height, max_side)
        image, landmarks, scale = reference.image, reference.landmarks, (1.0, 1.0)
        frames, frame_landmarks = getattr(reference, "frames", None), getattr(reference, "frame_landmarks", None)
        if size != (width, height):
            scale = (size[0] / width, size[1] / height)
            to_size = np.array([*scale, scale[0]], np.float32)
            image = cv2.resize(reference.image, size, interpolation=cv2.INTER_AREA)
            landmarks = reference.landmarks * to_size
            if frames is not None:
                frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
                frame_landmarks = frame_landmarks * to_size
        return RenderSource(size, scale, reference.identity, self.prepare(image, landmarks, frames, frame_landmarks))

    def render_codes(self, source: RenderSource, codes: np.ndarray) -> np.ndarray:
        """Visual codes (T, 58) -> frames (T, H, W, 3) uint8: the codes decoded to landmarks of the reference face
        (``decode_codes``), scaled to the output size, then warped (``render``)."""
        landmarks = decode_codes(codes, source.identity)  # T 478 3, reference px
        if source.scale != (1.0, 1.0):
            landmarks = landmarks * np.array([*source.scale, source.scale[0]], np.float32)  # z scales with x
        return self.render(source.state, landmarks)

    # ------------------------------------------------------------------------------------------ prepare

    def prepare(self, reference_image: np.ndarray, reference_landmarks: np.ndarray,
                frames: np.ndarray | None = None, frame_landmarks: np.ndarray | None = None) -> RenderReference:
        """Precompute the crop, triangulation and textures for one reference image.

        `frames` (K, H, W, 3) uint8 with `frame_landmarks` (K, 478, 3) px, optional: more frames of the reference
        clip, same size as the image; their open mouths become the mouth bank (``omnitalker/render/mouth.py``),
        their eyes opened otherwise than the source's the eye banks (``omnitalker/render/eye_bank.py``).
        """
        image = _check_image(reference_image)
        landmarks = _check_landmarks(reference_landmarks, (), "reference_landmarks")
        frames, frame_landmarks = _check_frames(frames, frame_landmarks, image.shape)
        height, width = image.shape[:2]
        topo = mesh_topology()
        cfg = self.config

        oval = landmarks[topo.oval_loop, :2]
        center = oval.mean(0)
        if not (0 <= center[0] < width and 0 <= center[1] < height):
            raise ValueError(f"reference_landmarks put the face centre at {center.round(1).tolist()}, outside the "
                             f"{width}x{height} image: pass pixel coordinates of this image")
        face_size = float(max(np.ptp(oval[:, 0]), np.ptp(oval[:, 1])))
        if face_size < 8:
            raise ValueError(f"the face is {face_size:.1f} px wide: too small to render")
        crop_size = int(round(cfg.crop_scale * face_size))
        crop_origin = np.round(center - crop_size / 2).astype(np.float64)
        render_size = min(cfg.output_size, crop_size)
        to_crop = render_size / crop_size  # crop px per frame px

        # Face axes: x along the eyes, y down the face.
        eye_axis = landmarks[topo.iris_centers[1], :2] - landmarks[topo.iris_centers[0], :2]
        eye_axis = eye_axis / max(np.hypot(*eye_axis), 1e-6)
        down_axis = np.array([-eye_axis[1], eye_axis[0]])

        # Rings around the face (hair above and beside it, neck below), as 3D points that follow the head.
        offsets = oval - center
        reach = np.hypot(offsets[:, 0], offsets[:, 1])[:, None]
        downward = offsets @ down_axis / (reach[:, 0] + 1e-6)  # cosine of the angle from straight down
        below = np.clip((downward - NECK_START) / NECK_RAMP, 0.0, 1.0)  # 1 under the chin
        half = crop_size / 2 - 1.0
        rings, follow = [], []
        for scale, base_follow in zip(cfg.ring_scales, cfg.ring_follow, strict=True):
            ring2d = center + offsets * scale
            ring2d = np.clip(ring2d, center - half * RING_INSET, center + half * RING_INSET)
            rings.append(np.concatenate([ring2d, landmarks[topo.oval_loop, 2:3]], axis=1))
            follow.append(base_follow * (1.0 - below * (1.0 - cfg.neck_follow)))
        ring_points3d = np.concatenate(rings).astype(np.float64)
        ring_follow = np.concatenate(follow)

        # Fixed anchors on the crop border (crop px).
        n = render_size - 1
        ticks = np.linspace(0, n, cfg.border_anchors + 1)[:-1]
        border = np.concatenate([
            np.stack([ticks, np.zeros_like(ticks)], 1), np.stack([np.full_like(ticks, n), ticks], 1),
            np.stack([n - ticks, np.full_like(ticks, n)], 1), np.stack([np.zeros_like(ticks), n - ticks], 1),
        ])
        border_frame = (border + 0.5) / to_crop - 0.5 + crop_origin

        num_rings = len(ring_points3d)
        # grid px -> frame px without any warp (the still background)
        grid_to_frame = cfg.map_downsample / to_crop
        offset = 0.5 * cfg.map_downsample / to_crop - 0.5
        background = np.array([grid_to_frame, 0.0, crop_origin[0] + offset, 0.0, grid_to_frame, crop_origin[1] + offset],
                              dtype=np.float32)
        source_vertices = np.concatenate([landmarks[:, :2], ring_points3d[:, :2], border_frame]).astype(np.float64)
        ring_start, border_start = NUM_LANDMARKS, NUM_LANDMARKS + num_rings

        # Outer triangles: bands joining the face oval to the rings point by point (so every oval edge is shared
        # with a face triangle: no uncovered sliver along the face outline, which showed as dots once the face
        # moved), then Delaunay of the outermost ring + border, minus the triangles inside that ring.
        loops = [topo.oval_loop] + [ring_start + k * len(oval) + np.arange(len(oval)) for k in range(len(cfg.ring_scales))]
        bands = []
        for inner, outer_loop in zip(loops[:-1], loops[1:], strict=True):
            nxt = np.roll(np.arange(len(oval)), -1)
            bands += [np.stack([inner, inner[nxt], outer_loop], 1), np.stack([inner[nxt], outer_loop[nxt], outer_loop], 1)]
        last = loops[-1]
        outer_ids = np.concatenate([last, np.arange(border_start, border_start + len(border))])
        outer = outer_ids[Delaunay(source_vertices[outer_ids]).simplices]
        centroids = source_vertices[outer].mean(1).astype(np.float32)
        ring_contour = source_vertices[last].astype(np.float32).reshape(-1, 1, 2)
        inside = np.array([cv2.pointPolygonTest(ring_contour, tuple(map(float, c)), False) > 0 for c in centroids])
        outer = np.concatenate([*bands, outer[~inside]])

        # Face triangles + the mouth and eye openings closed with strips.
        canonical = load_face_template().vertices  # decides which chain is upper where lips or lids touch
        mouth_upper, mouth_lower = split_loop(topo.mouth_loop, landmarks, eye_axis, canonical)
        eye_chains = [split_loop(loop, landmarks, eye_axis, canonical) for loop in topo.eye_loops]
        holes = [strip_triangles(mouth_upper, mouth_lower)] + [strip_triangles(u, lo) for u, lo in eye_chains]
        triangles = np.concatenate([outer, topo.face_triangles, *holes])

        stable_mask = np.ones(NUM_MESH_VERTICES, bool)
        stable_mask[topo.expressive[topo.expressive < NUM_MESH_VERTICES]] = False
        mouth_level = landmarks[mouth_upper[[0, -1]], :2].mean(0) @ down_axis
        stable_mask &= landmarks[:NUM_MESH_VERTICES, :2] @ down_axis < mouth_level  # the jaw moves
        stable = np.flatnonzero(stable_mask)

        # Textures, appended to the right of the image in one atlas.
        skin = median_color(image, polygon_mask((height, width), oval), DEFAULT_SKIN)
        textures: list[np.ndarray] = []
        eye_parts, bank_states = [], None
        # An eye closed in the reference has no eyeball to show: it stays closed (``keep_closed_eyes``).
        eye_frames = [LipFrame.from_points(landmarks, upper, lower) for upper, lower in eye_chains]
        closed_eyes = tuple((upper, lower, frame) for (upper, lower), frame in zip(eye_chains, eye_frames, strict=True)
                            if frame.gap() / frame.width < MIN_EYE_OPENING)
        if closed_eyes:
            warnings.warn(f"{len(closed_eyes)} eye(s) of the reference frame are closed: they stay closed in the "
                          "video; for eyes that open and blink, use a photo or clip where the eyes are open",
                          stacklevel=2)
        if cfg.eye_fill:
            for (upper, lower), center_idx, ring, frame in zip(eye_chains, topo.iris_centers, topo.iris_rings,
                                                                eye_frames, strict=True):
                if frame.gap() / frame.width < MIN_EYE_OPENING:
                    continue
                partial, eye_maps = eye_textures(image, landmarks, upper, lower, center_idx, ring)
                eye_parts.append(partial)
                textures += eye_maps
        if cfg.mouth_fill:
            mouth_frame = LipFrame.from_points(landmarks, mouth_upper, mouth_lower)
            drawn_teeth = draws_teeth(image, mouth_frame, skin)
            strips = (teeth_strips(mouth_frame.width, skin) if drawn_teeth
                      else own_interior_strips(image, mouth_frame, skin))
            textures += strips
            if frames is not None:
                bank_states, bank = bank_entries(frames, frame_landmarks, mouth_upper, mouth_lower)
                textures += bank
        eye_banks, first_eye_bank = [], len(textures)
        if frames is not None:  # each drawn eye's other openings in the clip (``omnitalker/render/eye_bank.py``)
            for partial in eye_parts:
                eye_bank, patches = eye_bank_entries(frames, frame_landmarks, landmarks, partial["upper"],
                                                     partial["lower"])
                eye_banks.append(eye_bank if patches else None)
                textures += patches
        atlas, offsets_xy = _pack_atlas(image, textures)
        start = first_eye_bank
        for eye_bank in eye_banks:  # each bank's patches, in the order they were appended
            if eye_bank is not None:
                eye_bank.offsets = np.stack(offsets_xy[start: start + len(eye_bank.frames)])
                start += len(eye_bank.frames)
        eyes = mouth = None
        if cfg.eye_fill:
            eyes = tuple(EyeReference(**{k: v for k, v in partial.items() if k != "patch_origin"},
                                      offset=offsets_xy[3 * k] - partial["patch_origin"],
                                      iris_offset=offsets_xy[3 * k + 1] - partial["patch_origin"],
                                      lid_offset=offsets_xy[3 * k + 2] - partial["patch_origin"],
                                      bank=eye_banks[k] if eye_banks else None)
                         for k, partial in enumerate(eye_parts))
        if cfg.mouth_fill:
            first = 3 * len(eye_parts)
            has_bank = bank_states is not None and len(bank_states) > 0
            teeth_line, chin = teeth_anchors(landmarks, mouth_frame) if drawn_teeth else (None, None)
            mouth = MouthReference(upper=mouth_upper, lower=mouth_lower, frame=mouth_frame,
                                   upper_strip=offsets_xy[first], lower_strip=offsets_xy[first + 1],
                                   strip_shape=textures[first].shape[:2],
                                   drawn_teeth=drawn_teeth, teeth_line=teeth_line, chin=chin,
                                   bank_states=bank_states if has_bank else None,
                                   bank_offsets=np.stack(offsets_xy[first + len(strips): first_eye_bank]) if has_bank else None)

        plate = still_plate = None
        if cfg.keep_background:
            plate = plate_with_mask(image)
        if plate is not None:
            still = (np.arange(render_size, dtype=np.float32) + 0.5) / to_crop - 0.5
            still_plate = cv2.remap(plate[..., :3], *np.meshgrid(still + crop_origin[0], still + crop_origin[1]),
                                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)

        return RenderReference(
            image=image, atlas=atlas, landmarks=landmarks, crop_origin=crop_origin, crop_size=crop_size,
            render_size=render_size,
            triangles=triangles.astype(np.int64), num_outer=len(outer), source_vertices=source_vertices,
            ring_points3d=ring_points3d, ring_follow=ring_follow, border_vertices=border, stable=stable,
            oval=topo.oval_loop, background=background,
            eyes=eyes, mouth=mouth, paste_mask=_feather_mask(crop_size, cfg.feather),
            closed_eyes=closed_eyes, plate=plate, still_plate=still_plate,
            orientation=np.sign(_signed_areas(source_vertices, triangles)),
            source_boxes=source_boxes(source_vertices[triangles]),
            facing=np.sign(_signed_areas(canonical[:, :2].astype(np.float64), topo.face_triangles)),
        )

    # ------------------------------------------------------------------------------------------- render

    def render(self, reference: RenderReference, landmarks: np.ndarray,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Driven landmarks (T, 478, 3) in reference-image px -> frames (T, H, W, 3) uint8.

        `progress(done, total)` is called after each frame if given.
        """
        if not isinstance(reference, RenderReference):
            raise ValueError("reference must come from WarpRenderer.prepare(image, landmarks)")
        landmarks = _check_landmarks(landmarks, (0,), "landmarks")
        frames = np.empty((len(landmarks), reference.height, reference.width, 3), np.uint8)
        for t, points in enumerate(landmarks):
            frames[t] = self._render(reference, points)
            if progress is not None:
                progress(t + 1, len(landmarks))
        return frames

    def render_frame(self, reference: RenderReference, landmarks_478: np.ndarray) -> np.ndarray:
        """One frame: driven landmarks (478, 3) -> (H, W, 3) uint8."""
        if not isinstance(reference, RenderReference):
            raise ValueError("reference must come from WarpRenderer.prepare(image, landmarks)")
        return self._render(reference, _check_landmarks(landmarks_478, (), "landmarks_478"))

    def _render(self, ref: RenderReference, points: np.ndarray) -> np.ndarray:
        crop = self.render_crop(ref, points)
        return _paste(ref, crop)

    def head_pose(self, ref: RenderReference, points: np.ndarray) -> Similarity:
        """The head's rigid motion, reference frame px -> driven frame px: a 3D similarity transform fitted on the
        landmarks that move only with the skull (not the lips, eyes, brows or jaw)."""
        return Similarity.fit(ref.landmarks[ref.stable].astype(np.float64), points[ref.stable].astype(np.float64))

    def crop_head_pose(self, ref: RenderReference, points: np.ndarray) -> Similarity:
        """``head_pose`` into crop px (the space ``render_crop`` draws in)."""
        return _in_crop_px(ref, self.head_pose(ref, points))

    def driven_vertices(self, ref: RenderReference, points: np.ndarray, pose: Similarity | None = None) -> np.ndarray:
        """Crop-px positions (V, 2) of every warp vertex (landmarks, rings, border) for driven landmarks; `pose` is
        ``head_pose(ref, points)`` when the caller has it already."""
        to_crop = ref.render_size / ref.crop_size
        points = points.astype(np.float64)
        # Rings follow the head's 3D similarity transform (fitted on the rigid landmarks).
        pose = self.head_pose(ref, points) if pose is None else pose
        moved = pose.apply(ref.ring_points3d)
        # ... plus part of the non-rigid motion of the face outline next to them (the jaw drags the neck).
        oval_rigid = pose.apply(ref.landmarks[ref.oval].astype(np.float64))
        residual = np.tile(points[ref.oval, :2] - oval_rigid[:, :2], (len(ref.ring_follow) // len(ref.oval), 1))
        moved = moved[:, :2] + RING_RESIDUAL_SHARE * residual
        # The rings follow the head only partly (measured on real clips: hair and shoulders left in place cost
        # less than hair moved with an uncertain head motion); where that would fold a triangle between the face
        # outline and the rings (a large turn or shift), they follow fully instead, so nothing tears.
        for follow in (ref.ring_follow, np.ones_like(ref.ring_follow)):
            rings = ref.ring_points3d[:, :2] + follow[:, None] * (moved - ref.ring_points3d[:, :2])
            driven_frame = np.concatenate([points[:, :2], rings])
            driven = np.concatenate([(driven_frame - ref.crop_origin + 0.5) * to_crop - 0.5, ref.border_vertices])
            if not _flipped(driven, ref.triangles[:ref.num_outer], ref.orientation[:ref.num_outer]).any():
                break
        return driven

    def render_crop(self, ref: RenderReference, points: np.ndarray) -> np.ndarray:
        """The face crop (render_size, render_size, 3) uint8 for driven landmarks (478, 3) in frame px."""
        size, down = ref.render_size, self.config.map_downsample
        points = keep_closed_eyes(ref, points.astype(np.float64))
        pose = self.head_pose(ref, points)
        driven = self.driven_vertices(ref, points, pose)

        # Draw order: background first, then face triangles far to near.
        tris = ref.triangles
        depth = points[tris[ref.num_outer:], 2].mean(1)
        order = np.concatenate([np.arange(ref.num_outer), ref.num_outer + np.argsort(-depth, kind="stable")])

        grid = (size + down - 1) // down
        driven_grid = (driven + 0.5) / down - 0.5
        turned_away = np.zeros(len(tris), bool)
        turned_away[ref.num_outer: ref.num_outer + NUM_FACE_TRIANGLES] = turned_away_faces(ref, driven_grid)
        order = order[~turned_away[order]]
        coef = np.concatenate([_affine_coefficients(driven_grid[tris], ref.source_vertices[tris]),
                               ref.background[None]])  # f+1 6
        ids = np.full((grid, grid), len(tris), np.int32)  # uncovered pixels (folds) keep the background
        fixed = np.round(driven_grid * SUBPIXEL_SCALE).astype(np.int32)[tris]  # f 3 2
        for f in order.tolist():
            cv2.fillConvexPoly(ids, fixed[f], f, cv2.LINE_8, SUBPIXEL_BITS)
        # Inside the driven face outline a culled triangle can leave a hole (a head turning away from a three-quarter
        # view culls a band of the far cheek); left to the background map it showed the reference's pixels there: a
        # black tear, a ghost of the old outline. The culled triangles cover their own holes, the nearest drawn
        # triangle whatever is left.
        culled = np.flatnonzero(turned_away)
        if len(culled):  # without a culled triangle the mesh leaves no hole inside the face: no mask to draw
            cover_face_holes(ids, len(tris), polygon_mask(ids.shape, driven_grid[ref.oval]).astype(bool),
                             fixed[culled], culled)
        map_x, map_y = sampling_maps(ids, coef, ref.source_boxes)
        if down > 1:
            map_x = cv2.resize(map_x, (size, size), interpolation=cv2.INTER_LINEAR)
            map_y = cv2.resize(map_y, (size, size), interpolation=cv2.INTER_LINEAR)
        np.clip(map_x, 0, ref.width - 1, out=map_x)  # never sample the textures beside the image
        np.clip(map_y, 0, ref.height - 1, out=map_y)

        crop = cv2.remap(ref.atlas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if ref.plate is not None:  # the background back in place: only the person moves
            crop = keep_background(crop, ref.still_plate, ref.plate, map_x, map_y)
        driven_crop = driven[:NUM_LANDMARKS]
        layers = mouth_layers(ref.mouth, driven_crop, size, _in_crop_px(ref, pose)) if ref.mouth is not None else []
        for eye in ref.eyes or ():
            layers += eye_layers(eye, driven_crop, size)
        for layer in layers:
            if layer is not None:
                composite(crop, ref.atlas, layer)
        return crop


# --------------------------------------------------------------------------------------------------
# Per-frame pieces


def turned_away_faces(ref: RenderReference, driven: np.ndarray) -> np.ndarray:
    """(NUM_FACE_TRIANGLES,) bool: the face triangles to cull for driven vertices (V, 2): those that turned away
    from the camera. Drawn, the far cheek of a turning head showed as dotted skin beyond the outline.

    A triangle turned away if its orientation flipped from the reference's and no longer matches the face seen from
    the front (``facing``, from the face template). The second test matters for a three-quarter reference, whose far
    cheek already faces away: turned towards the camera, those triangles face it again, and culled they left holes
    along the far cheek that showed the background's pixels (a seam of black dots on a three-quarter portrait)."""
    face = ref.triangles[ref.num_outer: ref.num_outer + NUM_FACE_TRIANGLES]
    away = _flipped(driven, face, ref.orientation[ref.num_outer: ref.num_outer + NUM_FACE_TRIANGLES])
    if ref.facing is not None:
        away &= _flipped(driven, face, ref.facing)
    return away


def cover_face_holes(ids: np.ndarray, uncovered: int, face: np.ndarray, culled: np.ndarray | None = None,
                     culled_ids: np.ndarray | None = None) -> None:
    """Give every pixel of `face` (bool, the grid's shape) that no triangle covers (`ids` == `uncovered`) a triangle, in
    place: a culled one that covers it (`culled`: (C, 3, 2) fixed-point grid vertices, ids `culled_ids`), else the
    triangle of its nearest covered pixel (scipy's exact Euclidean distance transform finds it). A culled triangle
    samples its own skin; the nearest one's map, carried past its edge, may reach other features."""
    holes = face & (ids == uncovered)
    if not holes.any():
        return
    if culled is not None and len(culled):
        behind = np.full_like(ids, uncovered)
        for vertices, index in zip(culled, culled_ids, strict=True):
            cv2.fillConvexPoly(behind, vertices, int(index), cv2.LINE_8, SUBPIXEL_BITS)
        ids[holes] = behind[holes]
        holes = face & (ids == uncovered)
        if not holes.any():
            return
    covered = ids != uncovered
    if not covered.any():
        return
    _, (rows, cols) = distance_transform_edt(~covered, return_indices=True)
    ids[holes] = ids[rows[holes], cols[holes]]


def keep_closed_eyes(ref: RenderReference, points: np.ndarray) -> np.ndarray:
    """Driven landmarks (478, 3) with the upper lid of each eye closed in the reference held at the reference's
    opening above the driven lower lid (opening it would show an eye the reference does not have)."""
    if not ref.closed_eyes:
        return points
    points = points.copy()
    for upper, lower, closed in ref.closed_eyes:
        frame = LipFrame.from_points(points, upper, lower)
        to_ref = closed.width / frame.width
        u, _, _, v_lo = frame.coords(points[upper, 0], points[upper, 1])
        gap = (np.interp(u, closed.lower_u, closed.lower_v) - np.interp(u, closed.upper_u, closed.upper_v)) / to_ref
        points[upper, 0], points[upper, 1] = frame.to_pixels(u, v_lo - gap)
    return points


def _in_crop_px(ref: RenderReference, pose: Similarity) -> Similarity:
    """A transform into frame px followed by frame px -> crop px (as ``driven_vertices`` maps points)."""
    to_crop = ref.render_size / ref.crop_size
    return pose.then_scaled(to_crop, np.append((0.5 - ref.crop_origin) * to_crop - 0.5, 0.0))


def _signed_areas(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Twice the signed area of each triangle (F, 3) of `vertices` (V, 2); the sign is its orientation."""
    a, b, c = vertices[triangles[:, 0]], vertices[triangles[:, 1]], vertices[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def _flipped(driven: np.ndarray, triangles: np.ndarray, orientation: np.ndarray) -> np.ndarray:
    """(F,) bool: the triangles whose driven orientation is opposite to their reference one (folded or turned away)."""
    return _signed_areas(driven, triangles) * orientation < 0


def sampling_maps(ids: np.ndarray, coef: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(map_x, map_y) float32 of the grid's cells (ids: (g, g) the triangle drawn at each, its last index the
    background): where each samples the reference, by its triangle's affine map (`coef` (F + 1, 6),
    ``_affine_coefficients``), held inside that triangle's source box (`boxes` (F + 1, 4), ``source_boxes``)."""
    gy, gx = np.mgrid[0:ids.shape[0], 0:ids.shape[1]].astype(np.float32)
    c = coef[ids]  # g g 6
    box = boxes[ids]  # g g 4
    map_x = np.clip(c[..., 0] * gx + c[..., 1] * gy + c[..., 2], box[..., 0], box[..., 2]).astype(np.float32)
    map_y = np.clip(c[..., 3] * gx + c[..., 4] * gy + c[..., 5], box[..., 1], box[..., 3]).astype(np.float32)
    return map_x, map_y


def source_boxes(source: np.ndarray) -> np.ndarray:
    """(F + 1, 4) float32 x0, y0, x1, y1 of each triangle's source vertices (F, 3, 2), SOURCE_BOX_MARGIN wider, and a
    last row that bounds nothing (the background map, ``_affine_coefficients``' extra row)."""
    boxes = np.concatenate([source.min(1) - SOURCE_BOX_MARGIN, source.max(1) + SOURCE_BOX_MARGIN], 1)  # f 4
    unbounded = np.array([[-np.inf, -np.inf, np.inf, np.inf]])
    return np.concatenate([boxes, unbounded]).astype(np.float32)


def _affine_coefficients(driven: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Per triangle, (a, b, c, d, e, f) with source = (a x + b y + c, d x + e y + f) for driven (x, y).

    driven, source: (F, 3, 2). Collapsed triangles map everything to their source centroid.
    """
    d0, d1, d2 = driven[:, 0], driven[:, 1], driven[:, 2]
    s0, s1, s2 = source[:, 0], source[:, 1], source[:, 2]
    a, b = d1 - d0, d2 - d0  # f 2
    det = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    ok = np.abs(det) > DEGENERATE_AREA
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # inverse of the 2x2 matrix [a b] (columns)
    i00, i01 = b[:, 1] * inv_det, -b[:, 0] * inv_det
    i10, i11 = -a[:, 1] * inv_det, a[:, 0] * inv_det
    sa, sb = s1 - s0, s2 - s0
    j00 = sa[:, 0] * i00 + sb[:, 0] * i10
    j01 = sa[:, 0] * i01 + sb[:, 0] * i11
    j10 = sa[:, 1] * i00 + sb[:, 1] * i10
    j11 = sa[:, 1] * i01 + sb[:, 1] * i11
    base = np.where(ok[:, None], s0, source.mean(1))
    c0 = base[:, 0] - np.where(ok, j00 * d0[:, 0] + j01 * d0[:, 1], 0.0)
    c1 = base[:, 1] - np.where(ok, j10 * d0[:, 0] + j11 * d0[:, 1], 0.0)
    return np.stack([j00, j01, c0, j10, j11, c1], axis=1).astype(np.float32)



def _pack_atlas(image: np.ndarray, textures: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Stack textures (each with a replicated border) in a column right of the image.

    Returns the atlas and each texture's (x, y) atlas position of its texel (0, 0)."""
    if not textures:
        return image, []
    padded = [cv2.copyMakeBorder(t, ATLAS_PAD, ATLAS_PAD, ATLAS_PAD, ATLAS_PAD, cv2.BORDER_REPLICATE) for t in textures]
    column_width = max(p.shape[1] for p in padded)
    height = max(image.shape[0], sum(p.shape[0] for p in padded))
    atlas = np.zeros((height, image.shape[1] + column_width, 3), np.uint8)
    atlas[: image.shape[0], : image.shape[1]] = image
    offsets, y = [], 0
    for p in padded:
        atlas[y: y + p.shape[0], image.shape[1]: image.shape[1] + p.shape[1]] = p
        offsets.append(np.array([image.shape[1] + ATLAS_PAD, y + ATLAS_PAD], dtype=np.float64))
        y += p.shape[0]
    return atlas, offsets


def _feather_mask(size: int, feather: float) -> np.ndarray:
    ramp_px = max(feather * size, 1.0)
    edge = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32) + 0.5
    ramp = np.clip(edge / ramp_px, 0.0, 1.0)
    return np.minimum(ramp[:, None], ramp[None, :])


def _paste(ref: RenderReference, crop: np.ndarray) -> np.ndarray:
    """Resize the crop back to its box in the frame and blend it in with the feathered mask."""
    size = ref.crop_size
    interpolation = cv2.INTER_AREA if size < crop.shape[0] else cv2.INTER_LINEAR
    patch = cv2.resize(crop, (size, size), interpolation=interpolation)
    frame = ref.image.copy()
    x0, y0 = int(ref.crop_origin[0]), int(ref.crop_origin[1])
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + size, ref.width), min(y0 + size, ref.height)
    if fx1 <= fx0 or fy1 <= fy0:
        return frame
    window = (slice(fy0, fy1), slice(fx0, fx1))
    local = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    weight = ref.paste_mask[local]
    frame[window] = cv2.blendLinear(patch[local], frame[window], weight, 1.0 - weight)
    return frame
