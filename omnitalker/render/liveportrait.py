"""LivePortrait renderer: the pipeline's visual codes -> frames with LivePortrait's released networks.

`LivePortraitRenderer` holds LivePortrait's appearance extractor (F), motion extractor (M), warping module (W),
SPADE generator (G) and stitching / retargeting MLPs (``omnitalker/models/liveportrait``) and has the pipeline's
renderer contract (ARCHITECTURE.md), so it can replace `WarpRenderer`:

    renderer = LivePortraitRenderer.from_pretrained("weights/liveportrait")   # python -m omnitalker.convert.liveportrait
    source = renderer.prepare_source(reference, max_side=1024)   # a pipeline's OmniTalkerReference, once
    frames = renderer.render_codes(source, codes)                 # (T, 58) codes -> (T, H, W, 3) uint8

It is a diffusers ``ModelMixin``: saved with a pipeline as ``config.json`` + ``diffusion_pytorch_model.safetensors``
(every module's weights under its released name: ``motion_extractor.detector.*``, ...).

The bridge from our codes to LivePortrait's motion (chosen because it needs no fitting and no training data):

1. **Driving frames drawn by the warp renderer.** The codes are decoded to landmarks of the reference face
   (``decode_codes``) and drawn with `WarpRenderer` from the reference image, at about the crop's resolution. Its
   geometry is what the codes say (head pose, jaw, lips, lids); its texture is irrelevant, because
2. **the motion extractor reads that frame's implicit keypoints**: pose, expression, scale and shift, in
   LivePortrait's own keypoint space. A code-to-keypoint regressor would need paired data we do not have; the
   drawn frame is a free, exact translation.
3. **LivePortrait's relative-motion rule** (its video pipeline's ``flag_relative``): the source keypoints move by
   the driving frame's change from an *anchor* driving frame (R = R_d R_a^T R_s, exp_s + exp_d - exp_a, scale
   ratio, shift difference with tz = 0). The anchor is the reference frame itself drawn by the warp renderer
   with its own landmarks, not the first driven frame as in LivePortrait: our codes are absolute (zero motion is
   the reference), and the pipeline renders a clip one second at a time, so every chunk must share one anchor.
   Drawing the anchor with the same renderer cancels the warp renderer's texture bias from the difference.
4. **Eyes and lips retargeted from the codes' openings** with LivePortrait's retargeting MLPs: the eye and lip
   open ratios (lid gap / eye width, inner-lip gap / mouth width) of the decoded landmarks are the targets; the
   source's ratios come from the reference landmarks. The keypoints the MLPs move (LivePortrait's eye keypoints
   11, 13, 15, 16, 18 and lip keypoints 6, 12, 14, 17, 19, 20, as in its "animation region" option) keep the
   source's expression instead of the driving frame's, so an opening is not applied twice. Why: a blink or a
   mouth opening is a few pixels of texture in the drawn frame, read back through M with some loss, whereas the
   codes state it exactly. ``retarget_eyes`` / ``retarget_lips`` False use the drawn frame's expression instead.
5. **Stitching on**: the stitching MLP keeps the shoulders / crop border aligned with the source, so the paste-back
   seam does not move.

Crop and paste-back (MediaPipe, no InsightFace): the reference's 478 landmarks give a square box rotated with
the eye line, `crop_scale` (2.3, LivePortrait's) times the larger side of the face's box, measured on the mesh
from the eyebrows down (LivePortrait's own landmarks, which its training crops were made with, have no
forehead), its centre moved by `crop_shift` of the side along the face's vertical (up, as LivePortrait's
``vy_ratio`` -0.125); the 256x256 crop feeds F and M, the 512x512 output (G upsamples 2x) goes back into the
full frame through the inverse similarity with a feathered square mask. A reference whose face is too small or
outside the image is refused with a ValueError that says so. A video reference's extra frames (``frames`` /
``frame_landmarks``) are not used: the generator draws the mouth interior.

Cost: the released networks need a GPU for real time (LivePortrait reports 12.8 ms a frame on an RTX 4090);
``python bench/liveportrait.py`` measures frames/s on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from omnitalker.frontend.face.codes import decode_codes
from omnitalker.io.image import fit_within
from omnitalker.models.liveportrait import MODULE_CLASSES, MODULE_NAMES, camera, full_size_configs
from omnitalker.render.warp import RenderReference, WarpRenderer

# MediaPipe Face Mesh indices (478-point layout)
EYE_POINTS = ((159, 145, 33, 133), (386, 374, 362, 263))  # per eye: upper lid, lower lid, two corners
LIP_POINTS = (13, 14, 61, 291)  # inner upper lip, inner lower lip, mouth corners
EYE_LINE = (33, 263)  # outer eye corners: the crop's rotation
# eyebrows: the crop's box spans brows to chin, like LivePortrait's landmark box (its landmarks have no forehead)
EYEBROWS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
NUM_MESH_POINTS = 468  # the face mesh without the iris points
# LivePortrait's implicit keypoints that its eye / lip retargeting moves (its "animation region" indices)
EYE_KEYPOINTS = (11, 13, 15, 16, 18)
LIP_KEYPOINTS = (6, 12, 14, 17, 19, 20)
MIN_FACE_PX = 16  # a face smaller than this (mesh extent, px) is refused


def open_ratios(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (T, 478, 2+) -> eye open ratios (T, 2) (lid gap / eye width, per eye) and lip open ratio (T,)
    (inner-lip gap / mouth width): the quantities LivePortrait's retargeting MLPs take."""
    points = np.asarray(landmarks, np.float64)[..., :2]

    def ratio(a, b, c, d):
        gap = np.linalg.norm(points[:, a] - points[:, b], axis=-1)
        return gap / (np.linalg.norm(points[:, c] - points[:, d], axis=-1) + 1e-6)

    eyes = np.stack([ratio(*eye) for eye in EYE_POINTS], axis=-1)
    return eyes.astype(np.float32), ratio(*LIP_POINTS).astype(np.float32)


def crop_transform(landmarks: np.ndarray, size: int, crop_scale: float, crop_shift: float) -> np.ndarray:
    """(2, 3) similarity: frame px -> crop px of a `size` square crop, rotated with the eye line, side
    `crop_scale` x the larger side of the face's box (the mesh from the eyebrows down, in the rotated frame),
    centre moved `crop_shift` x side down the face."""
    points = np.asarray(landmarks, np.float64)[:NUM_MESH_POINTS, :2]
    if points.shape != (NUM_MESH_POINTS, 2) or not np.isfinite(points).all():
        raise ValueError("the reference landmarks must be (478, 3) finite pixel coordinates of a detected face "
                         "(MediaPipe Face Mesh); no face was found to crop: use a photo or clip with a visible face")
    axis = points[EYE_LINE[1]] - points[EYE_LINE[0]]
    angle = np.arctan2(axis[1], axis[0])
    cos, sin = np.cos(angle), np.sin(angle)
    to_face = np.array([[cos, sin], [-sin, cos]])  # frame -> face-aligned axes (x along the eyes, y down)
    aligned = points @ to_face.T
    aligned = aligned[aligned[:, 1] >= aligned[list(EYEBROWS), 1].min()]  # no forehead
    low, high = aligned.min(0), aligned.max(0)
    extent = float((high - low).max())
    if extent < MIN_FACE_PX:
        raise ValueError(f"the face is {extent:.0f} px across: too small for the LivePortrait crop (at least "
                         f"{MIN_FACE_PX} px); use a larger photo or the warp renderer")
    side = crop_scale * extent
    center_aligned = (low + high) / 2 + np.array([0.0, crop_shift * side])
    center = to_face.T @ center_aligned
    scale = size / side
    linear = scale * to_face
    offset = np.full(2, (size - 1) / 2) - linear @ center  # the box centre -> the crop's centre (pixel centres)
    return np.concatenate([linear, offset[:, None]], axis=1)


def feather_mask(size: int, feather: float) -> np.ndarray:
    """(size, size) float32: 1 inside, ramping to 0 over `feather` x size at the border."""
    ramp_px = max(feather * size, 1.0)
    edge = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32) + 0.5
    ramp = np.clip(edge / ramp_px, 0.0, 1.0)
    return np.minimum(ramp[:, None], ramp[None, :])


@dataclass
class LivePortraitSource:
    """A pipeline reference prepared for `LivePortraitRenderer.render_codes` at one output size."""

    size: tuple[int, int]  # (width, height) of the output frames
    scale: tuple[float, float]  # output px per reference px, (x, y)
    identity: object  # the face's FaceIdentity: decodes codes to its landmarks
    image: np.ndarray  # (H, W, 3) uint8, the reference frame at the output size
    to_crop: np.ndarray  # (2, 3) output px -> crop px
    warp_state: RenderReference  # the warp renderer's reference (driving frames)
    warp_scale: float  # warp-frame px per output px
    window: tuple[int, int, int, int]  # x0, y0, x1, y1: where the pasted face lands in the output frame
    from_output: np.ndarray  # (2, 3) generator-output px -> window px
    paste_mask: np.ndarray  # (window h, window w, 1) float32 blending weights
    feature: torch.Tensor  # (1, c, d, h, w) F(source crop)
    motion: dict  # refined motion of the source crop (degrees, (1, k, 3) kp / exp, rotation)
    keypoints: torch.Tensor  # (1, k, 3) x_s
    anchor: dict  # refined motion of the anchor driving frame (the reference drawn by the warp renderer)
    eye_ratios: np.ndarray  # (2,) the source's eye open ratios
    lip_ratio: float  # the source's lip open ratio


class LivePortraitRenderer(ModelMixin, ConfigMixin):
    """LivePortrait's networks behind the pipeline's renderer contract (see the module docstring).

    Args:
        *_params: each module's config (``omnitalker.models.liveportrait``; None: the released full size).
        input_size: side of the face crop F and M read (256 for the released weights); the output is twice that.
        crop_scale: crop side / face-mesh extent. crop_shift: crop centre offset along the face's vertical, as a
            fraction of the side (negative: up).
        feather: paste-back blend width, fraction of the crop side.
        retarget_eyes, retarget_lips: eyes / lips from the codes' openings through the retargeting MLPs
            (else from the drawn driving frame's expression).
        stitching: apply the stitching MLP.
        batch_size: frames per forward pass.
    """

    @register_to_config
    def __init__(
        self,
        appearance_feature_extractor_params: dict | None = None,
        motion_extractor_params: dict | None = None,
        warping_module_params: dict | None = None,
        spade_generator_params: dict | None = None,
        stitching_params: dict | None = None,
        lip_params: dict | None = None,
        eye_params: dict | None = None,
        input_size: int = 256,
        crop_scale: float = 2.3,
        crop_shift: float = -0.125,
        feather: float = 0.1,
        retarget_eyes: bool = True,
        retarget_lips: bool = True,
        stitching: bool = True,
        batch_size: int = 4,
    ):
        super().__init__()
        if not (isinstance(input_size, int) and 32 <= input_size <= 1024 and input_size % 16 == 0):
            raise ValueError(f"input_size must be a multiple of 16 in [32, 1024] (256 for the released weights), "
                             f"got {input_size!r}")
        if not crop_scale > 1.0:
            raise ValueError(f"crop_scale must be > 1 (the crop must contain the face), got {crop_scale}")
        if not 0.0 <= feather < 0.5:
            raise ValueError(f"feather must be in [0, 0.5), got {feather}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        defaults = full_size_configs()
        given = (appearance_feature_extractor_params, motion_extractor_params, warping_module_params,
                 spade_generator_params, stitching_params, lip_params, eye_params)
        for name, params in zip(MODULE_NAMES, given, strict=True):
            # the stitching MLP's attribute is `stitching_network`: `stitching` is the on/off config flag
            attribute = "stitching_network" if name == "stitching" else name
            setattr(self, attribute, MODULE_CLASSES[name](**(params if params is not None else defaults[name])))
        self._warp = WarpRenderer(output_size=input_size)

    @classmethod
    def from_module_configs(cls, configs: dict[str, dict], **kwargs) -> LivePortraitRenderer:
        """From ``omnitalker.models.liveportrait.module_configs(...)`` (released names -> configs)."""
        return cls(**{f"{name}_params": configs[name] for name in MODULE_NAMES}, **kwargs)

    def modules_by_name(self) -> dict[str, torch.nn.Module]:
        """Released module name -> module (stitching, lip and eye included)."""
        return {name: getattr(self, "stitching_network" if name == "stitching" else name) for name in MODULE_NAMES}

    # ------------------------------------------------------------------------------------ the pipeline's contract

    @torch.no_grad()
    def prepare_source(self, reference, max_side: int | None = None) -> LivePortraitSource:
        """The source of a pipeline reference (``OmniTalkerReference``: its frame, landmarks and face identity) at
        the output size: the frame scaled so its longer side is at most `max_side` (never up; None keeps it)."""
        image = np.ascontiguousarray(reference.image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"reference.image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        size = fit_within(width, height, max_side)
        scale = (size[0] / width, size[1] / height)
        landmarks = np.asarray(reference.landmarks, np.float32)
        if size != (width, height):
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            landmarks = landmarks * np.array([*scale, scale[0]], np.float32)
        cfg = self.config
        to_crop = crop_transform(landmarks, cfg.input_size, cfg.crop_scale, cfg.crop_shift)
        center = cv2.invertAffineTransform(to_crop) @ np.array([(cfg.input_size - 1) / 2] * 2 + [1.0])
        if not (0 <= center[0] < size[0] and 0 <= center[1] < size[1]):
            raise ValueError(f"the face crop's centre {center.round(1).tolist()} is outside the {size[0]}x{size[1]} "
                             "image: pass the landmarks of this image in its pixel coordinates")
        crop_side = cfg.input_size / float(np.hypot(*to_crop[:, 0]))  # output px

        # The warp renderer draws the driving frames at about the crop's resolution (never above the output's).
        warp_scale = min(1.0, cfg.input_size / crop_side * 1.25)
        warp_size = (max(16, round(size[0] * warp_scale)), max(16, round(size[1] * warp_scale)))
        warp_image = image if warp_size == size else cv2.resize(image, warp_size, interpolation=cv2.INTER_AREA)
        warp_state = self._warp.prepare(warp_image, landmarks * np.float32(warp_scale))

        source_crop = cv2.warpAffine(image, to_crop, (cfg.input_size, cfg.input_size), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
        crop_tensor = self._to_tensor(source_crop[None])
        motion = camera.refine_motion(self.motion_extractor(crop_tensor))
        feature = self.appearance_feature_extractor(crop_tensor)
        keypoints = camera.transform_keypoints(motion)
        anchor_frame = self._warp.render(warp_state, (landmarks * np.float32(warp_scale))[None])
        anchor = camera.refine_motion(self.motion_extractor(self._driving_crops(anchor_frame, to_crop, warp_scale)))

        # paste-back: the generator's output (2x the crop) back into its window of the output frame
        out_size = 2 * cfg.input_size
        from_output = cv2.invertAffineTransform(to_crop * (out_size / cfg.input_size)
                                                + np.array([[0, 0, 0.5 * (out_size / cfg.input_size) - 0.5]] * 2))
        corners = np.array([[0, 0, 1], [out_size, 0, 1], [0, out_size, 1], [out_size, out_size, 1]], np.float64)
        frame_corners = corners @ from_output.T
        x0, y0 = np.floor(frame_corners.min(0)).astype(int).clip(0, [size[0], size[1]])
        x1, y1 = np.ceil(frame_corners.max(0)).astype(int).clip(0, [size[0], size[1]])
        if x1 <= x0 or y1 <= y0:
            raise ValueError("the face crop lies outside the image")
        from_output = from_output - np.array([[0, 0, x0], [0, 0, y0]], np.float64)
        mask = cv2.warpAffine(feather_mask(out_size, cfg.feather), from_output, (x1 - x0, y1 - y0),
                              flags=cv2.INTER_LINEAR, borderValue=0.0)
        eye_ratios, lip_ratio = open_ratios(landmarks[None])
        return LivePortraitSource(
            size=size, scale=scale, identity=reference.identity, image=image, to_crop=to_crop,
            warp_state=warp_state, warp_scale=warp_scale, window=(int(x0), int(y0), int(x1), int(y1)),
            from_output=from_output, paste_mask=mask[..., None], feature=feature, motion=motion,
            keypoints=keypoints, anchor=anchor, eye_ratios=eye_ratios[0], lip_ratio=float(lip_ratio[0]),
        )

    @torch.no_grad()
    def render_codes(self, source: LivePortraitSource, codes: np.ndarray) -> np.ndarray:
        """Visual codes (T, 58) -> frames (T, H, W, 3) uint8 (the bridge in the module docstring)."""
        if not isinstance(source, LivePortraitSource):
            raise ValueError("source must come from LivePortraitRenderer.prepare_source(reference, max_side)")
        landmarks = decode_codes(codes, source.identity)  # T 478 3, reference px
        landmarks = landmarks * np.array([*source.scale, source.scale[0]], np.float32)  # output px
        frames = np.empty((len(landmarks), source.size[1], source.size[0], 3), np.uint8)
        step = self.config.batch_size
        for start in range(0, len(landmarks), step):
            batch = landmarks[start: start + step]
            drawn = self._warp.render(source.warp_state, batch * np.float32(source.warp_scale))
            crops = self._driving_crops(drawn, source.to_crop, source.warp_scale)
            eyes, lips = open_ratios(batch)
            out = self.animate(source, crops, eyes.mean(-1), lips)
            frames[start: start + len(batch)] = self.paste(source, out)
        return frames

    # ------------------------------------------------------------------------------------------ the pieces

    @torch.no_grad()
    def animate(self, source: LivePortraitSource, driving: torch.Tensor, eye_targets: np.ndarray | None = None,
                lip_targets: np.ndarray | None = None) -> torch.Tensor:
        """Driving crops (b, 3, s, s) in [0, 1] (+ target eye / lip open ratios (b,)) -> generator output
        (b, 3, 2s, 2s) in [0, 1]: relative motion from the anchor, retargeting, stitching, warp + decode."""
        cfg = self.config
        motion = camera.refine_motion(self.motion_extractor(driving))
        b = driving.shape[0]
        src = {k: v.expand(b, *v.shape[1:]) for k, v in source.motion.items()}
        anchor = {k: v.expand(b, *v.shape[1:]) for k, v in source.anchor.items()}
        held = [*(EYE_KEYPOINTS if cfg.retarget_eyes and eye_targets is not None else ()),
                *(LIP_KEYPOINTS if cfg.retarget_lips and lip_targets is not None else ())]
        if held:  # these keypoints' expression comes from the retargeting MLPs, not from the drawn frame
            motion["exp"] = motion["exp"].clone()
            motion["exp"][:, held] = anchor["exp"][:, held]
        x_s = source.keypoints.expand(b, -1, -1)
        x_d = camera.relative_motion(src, motion, anchor)
        if cfg.retarget_eyes and eye_targets is not None:
            ratios = torch.tensor(np.stack([np.broadcast_to(source.eye_ratios, (b, 2))[:, 0],
                                            np.broadcast_to(source.eye_ratios, (b, 2))[:, 1],
                                            np.asarray(eye_targets, np.float32)], 1), dtype=x_s.dtype,
                                  device=x_s.device)
            x_d = x_d + camera.retarget(self.eye, x_s, ratios)
        if cfg.retarget_lips and lip_targets is not None:
            ratios = torch.tensor(np.stack([np.full(b, source.lip_ratio, np.float32),
                                            np.asarray(lip_targets, np.float32)], 1), dtype=x_s.dtype,
                                  device=x_s.device)
            x_d = x_d + camera.retarget(self.lip, x_s, ratios)
        if cfg.stitching:
            x_d = camera.stitch(self.stitching_network, x_s, x_d)
        feature = source.feature.expand(b, *source.feature.shape[1:])
        warped = self.warping_module(feature, x_d, x_s)
        return self.spade_generator(warped["out"])

    def paste(self, source: LivePortraitSource, out: torch.Tensor) -> np.ndarray:
        """Generator output (b, 3, 2s, 2s) in [0, 1] -> full frames (b, H, W, 3) uint8."""
        images = (out.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        x0, y0, x1, y1 = source.window
        frames = np.repeat(source.image[None], len(images), axis=0)
        background = source.image[y0:y1, x0:x1].astype(np.float32)
        for frame, image in zip(frames, images, strict=True):
            face = cv2.warpAffine(image, source.from_output, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            blended = face * source.paste_mask + background * (1.0 - source.paste_mask)
            frame[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return frames

    def _driving_crops(self, frames: np.ndarray, to_crop: np.ndarray, warp_scale: float) -> torch.Tensor:
        """Warp-renderer frames (b, h, w, 3) uint8 (warp-frame px) -> crops (b, 3, s, s) in [0, 1]."""
        size = self.config.input_size
        to_crop = to_crop.copy()
        to_crop[:, :2] /= warp_scale
        crops = np.stack([cv2.warpAffine(f, to_crop, (size, size), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE) for f in frames])
        return self._to_tensor(crops)

    def _to_tensor(self, images: np.ndarray) -> torch.Tensor:
        """(b, h, w, 3) uint8 -> (b, 3, h, w) float in [0, 1] on the renderer's device."""
        parameter = next(self.parameters())
        tensor = torch.from_numpy(np.ascontiguousarray(images)).to(parameter.device)
        return tensor.permute(0, 3, 1, 2).to(parameter.dtype) / 255.0
