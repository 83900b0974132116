"""Evaluation of a pipeline on the synthetic corpus: intelligibility, lip-sync, style (P-FID, E-FID, SIM-A), duration.

    OMP_NUM_THREADS=1 python -m omnitalker.eval --pipeline weights/omnitalker-demo --split val \
        --data-dir data/synth-en --out results.json

Protocol. For each evaluated item of a held-out split (``--max-samples`` items in all, evenly spaced
over each split and shared evenly between ``val_texts`` and ``val_speakers`` for ``--split val``):
- the prompt is another utterance of the item's speaker: for ``val_texts`` (unseen sentence, training
  speaker) that speaker's ``train`` clip closest to ``PROMPT_SECONDS``; for ``val_speakers`` (unseen
  speaker) the closest other ``val_speakers`` clip of that speaker that is not an item itself (or, when every
  clip of the speaker is an item, the closest other item). The target is the item's text.
- systems:
  ``ground_truth``  the item itself (the corpus stores mel + codes, no audio);
  ``cascade``       the rule-based cascade that made the corpus: espeak-ng with the speaker's voice
                    parameters (``speakers.json``) + ``synthesize_codes`` in the speaker's style. Its
                    audio is the ground truth again (espeak is deterministic), its codes a fresh draw of
                    the same style: the upper bound and the sanity check of every metric;
  ``reference``     the learned model, joint generation in-filling [prompt mel + codes | target] with
                    text = prompt transcript + target text (the pipeline's layout and its duration rule:
                    the prompt's frames per text byte), the default guidance (``--guidance`` to change it), ``--steps``;
                    a "durations" model gets the part of the prompt the pipeline keeps (``--prompt-keep``);
  ``no_reference``  the same model, same text target and number of frames, with no audio or visual
                    prompt (the text alone; audio/visual guidance off since there is nothing to drop):
                    the model's unconditional style. The in-context claim is reference < no_reference
                    on P-FID / E-FID and reference > no_reference on SIM-A.
- metrics, per item and aggregated per split and system:
  ``cer``        character error rate of the CTC recognizer (``omnitalker.eval.recognizer``, trained on
                 the corpus's ground-truth mels) on the system's log-mel directly (not re-analysed
                 vocoded audio), English items only. The ground-truth row is the recognizer's own CER on
                 these held-out items; ``wrong_sentence_cer`` is chance level: the ground-truth transcript of
                 each item scored against the next item's text (fluent speech of the wrong sentence);
  ``cer_zh``     the same for the Mandarin items with the Mandarin recognizer (``--recognizer-zh``, trained
                 with ``train_recognizer --lang zh``): character error rate over the toned pinyin transcript
                 (``recognizer.pinyin_transcript``: letters, tone digits and spaces, so a wrong tone is one
                 edit), not over Chinese characters; chance level in ``wrong_sentence_cer_zh``. None without
                 a Mandarin recognizer;
  ``wer``        Whisper word error rate (``omnitalker.frontend.asr``, the bundled tiny.en: a recognizer no one here
                 trained) of the system's mel vocoded by the pipeline's vocoder and resampled to 16 kHz, after
                 Whisper's English normalisation (``omnitalker.eval.wer``); English items only. Speech the
                 recognizer refuses (no words, not English) counts as all words deleted. The ground-truth row,
                 vocoded the same way, is the yardstick the model's WER is read against. ``wer_ci`` is its 95 %
                 bootstrap interval over the items and ``wer_ratio`` (with ``wer_ratio_ci``) the system's WER over
                 the ground truth's on the same items, paired (``omnitalker.eval.wer``): with a few dozen items
                 one sentence moves the WER by hundredths, so read differences against these. ``--no-wer`` skips it;
  ``sync_corr``, ``sync_lag`` (frames at 30 fps)   peak of the mean lagged correlation between mouth
                 opening (codes) and audio envelope (mel) (``omnitalker.eval.lipsync``);
  ``expert_corr``, ``expert_lag``   the same between the mouth and the mouth that a sync expert
                 (``AudioToMouthRegressor``, fitted on the corpus's ground-truth ``train`` split at the
                 start of the run) predicts from the system's audio: our SyncNet-style score;
  ``p_fid``, ``e_fid``   Fréchet distances (``omnitalker.eval.fid``) between the system's codes of a
                 speaker's items and that speaker's ground-truth codes (up to ``POOL_CLIPS`` clips other
                 than the evaluated items: ``train`` clips for val_texts speakers, other val_speakers
                 clips otherwise), averaged over the speakers of the split;
  ``sim_a``      resemblyzer cosine (``omnitalker.eval.speaker_similarity``) between the system's audio
                 and the prompt utterance's audio (the paper's reference-vs-generated SIM-A), both made
                 from mel by the pipeline's vocoder (Griffin-Lim for the demo) so neither side has an
                 advantage; for ground truth it is the same-speaker, different-utterance ceiling;
  ``dur_err``    |generated frames - ground-truth frames| / ground-truth frames.
Per-item values and the configuration go to ``--out`` (JSON); a markdown table is printed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from omnitalker.flow.guidance import GuidanceConfig
from omnitalker.flow.sampling import sample
from omnitalker.frontend.face.codes import CODE_FPS, MEL_FPS
from omnitalker.frontend.text import normalize_text, prepare_reference_text
from omnitalker.pipeline.chunking import estimate_num_frames
from omnitalker.pipeline.mel_smoothing import smooth_mel
from omnitalker.pipeline.text_layout import (
    DEFAULT_PROMPT_KEEP,
    MAX_PROMPT_SHARE,
    check_prompt_share,
    prompt_window,
)

from .fid import e_fid, p_fid
from .lipsync import AudioToMouthRegressor, LipSyncScore, lipsync_score, pooled_lipsync, sync_expert_score
from .recognizer import character_error_rate, normalize_for_cer, pinyin_transcript
from .train_recognizer import CorpusClip, read_split
from .wer import wer_interval, wer_ratio_interval, word_edits

SYSTEMS = ("ground_truth", "cascade", "reference", "no_reference")
EVAL_SPLITS = ("val_texts", "val_speakers")
PROMPT_SECONDS = 3.0  # prompts closest to this length: enough voice and motion, little compute
POOL_CLIPS = 20  # ground-truth clips per speaker for the FID reference distribution
GENERATION_BATCH = 4  # items sampled together (their CFG passes are batched inside the sampler too)
PROMPT_LAYOUTS = ("estimated", "oracle")  # durations models: how the prompt's phonemes are laid over its frames
TARGET_LAYOUTS = ("predicted", "oracle")  # durations models: the target's phoneme frames from the predictor or the corpus
METRICS = ("cer", "cer_zh", "wer", "sync_corr", "sync_lag", "p_fid", "e_fid", "sim_a", "dur_err")


@dataclass
class EvalItem:
    split: str
    clip: CorpusClip  # the target: text, speaker, ground-truth mel and codes
    prompt: CorpusClip  # another utterance of the same speaker


@dataclass
class SystemOutput:
    """One system's rendition of one item: mel (n, 100) at 93.75 fps, codes (T, 58) at 30 fps."""

    mel: np.ndarray
    codes: np.ndarray
    metrics: dict = field(default_factory=dict)


def _closest_prompt(candidates: list[CorpusClip]) -> CorpusClip:
    target = PROMPT_SECONDS * MEL_FPS
    return min(candidates, key=lambda clip: (abs(len(clip.mel) - target), clip.key))


def plan_items(data_dir: str | Path, splits: list[str], max_samples: int) -> tuple[list[EvalItem], dict]:
    """Items to evaluate and, per speaker, the ground-truth code pool for the FIDs."""
    if max_samples < len(splits):
        raise ValueError(f"--max-samples must be at least {len(splits)} (one item per split), got {max_samples}")
    train = read_split(data_dir, "train", with_codes=True) if "val_texts" in splits else []
    items, pools = [], {}
    for position, split in enumerate(splits):
        clips = read_split(data_dir, split, with_codes=True)
        count = max_samples // len(splits) + (position < max_samples % len(splits))
        picks = np.unique(np.linspace(0, len(clips) - 1, min(count, len(clips))).round().astype(int))
        chosen = [clips[i] for i in picks]
        chosen_keys = {clip.key for clip in chosen}
        source = train if split == "val_texts" else clips
        for clip in chosen:
            same_speaker = [c for c in source if c.speaker == clip.speaker and c.key != clip.key]
            # prompt and FID pool from utterances that are not evaluated themselves; when a whole split is
            # evaluated, a speaker may have none left, so another evaluated utterance of theirs prompts instead
            # (and the pool then holds the items' own codes: the ground truth's FIDs drop to ~0, the systems' do not)
            others = [c for c in same_speaker if c.key not in chosen_keys] or same_speaker
            if not others:
                raise ValueError(f"speaker {clip.speaker} of {clip.key} has no other utterance in the corpus to prompt with")
            items.append(EvalItem(split, clip, _closest_prompt(others)))
            pools.setdefault(clip.speaker, [c.codes for c in others[:POOL_CLIPS]])
    return items, pools


# ------------------------------------------------------------------------------------------- systems


def run_cascade(items: list[EvalItem], data_dir: str | Path, seed: int) -> list[SystemOutput]:
    """espeak-ng + rule visemes with each item's speaker style (the corpus generator, re-run)."""
    import json

    from omnitalker.data.motion import SpeakerStyle
    from omnitalker.data.synthetic import make_sample, speech_request
    from omnitalker.frontend.espeak import synthesize_many

    speakers_path = Path(data_dir) / "speakers.json"
    if not speakers_path.is_file():
        raise ValueError(f"{speakers_path} is missing: the cascade needs the corpus's speaker styles")
    styles = {entry["speaker_id"]: SpeakerStyle(**{**entry, "gaze_bias": tuple(entry["gaze_bias"])})
              for entry in json.loads(speakers_path.read_text())}
    requests = [speech_request(item.clip.text, item.clip.lang, styles[item.clip.speaker]) for item in items]
    outputs = []
    for index, (item, utterance) in enumerate(zip(items, synthesize_many(requests), strict=True)):
        regenerated = make_sample(item.clip.key, item.clip.text, item.clip.lang, styles[item.clip.speaker], utterance,
                                  np.random.default_rng([seed, index]))
        outputs.append(SystemOutput(regenerated.mel.astype(np.float32), regenerated.codes))
    return outputs


def _to_mel_rate(codes: np.ndarray, num_frames: int) -> torch.Tensor:
    from omnitalker.frontend.face.codes import retime

    return torch.as_tensor(retime(codes.astype(np.float32), CODE_FPS, MEL_FPS, num_frames))  # n 58


def oracle_layout(pipe, clip: CorpusClip):
    """A clip's true phoneme timings (its stored espeak events) as a TextLayout."""
    from omnitalker.frontend.phonemes import events_to_sequence, frame_durations, pinyin_tones
    from omnitalker.pipeline.text_layout import TextLayout

    tones = pinyin_tones(clip.text) if clip.lang == "zh" else ()
    seq = events_to_sequence(clip.meta.get("phonemes", []), clip.meta.get("word_starts", ()), tones,
                             len(clip.mel) / MEL_FPS)
    return TextLayout(pipe.tokenizer.convert_tokens_to_ids(seq.tokens), frame_durations(seq, len(clip.mel)).tolist())


def duration_layouts(pipe, items: list[EvalItem], with_reference: bool, prompt_layout: str,
                     prompt_keep: str = DEFAULT_PROMPT_KEEP, target_layout: str = "predicted",
                     prompt_share: float = MAX_PROMPT_SHARE) -> list:
    """Per item (the phoneme layout over [prompt | target], the prompt frames kept) for a "durations" model: the
    prompt's from espeak's timings of its transcript stretched onto its sound ("estimated", what the pipeline
    does) or from the corpus's true timings ("oracle"), cut as the pipeline cuts it (``text_layout.prompt_window``,
    keeping its ``prompt_keep`` end, at most ``prompt_share`` of [prompt | target]); the target's from the
    duration predictor at the whole prompt's pace ("predicted") or the item's true timings ("oracle": bounds what
    a better predictor could buy). The no-reference system gets the same target durations (so it ablates the
    prompts' voice/motion only)."""
    layouts = []
    for item in items:
        prompt_mel = torch.from_numpy(item.prompt.mel.astype(np.float32))
        oracle = oracle_layout(pipe, item.prompt) if prompt_layout == "oracle" else None
        timing = pipe.layout_prompt(item.prompt.text, prompt_mel, oracle)
        if target_layout == "oracle":
            target = oracle_layout(pipe, item.clip)
        else:
            target = pipe.layout_target(item.clip.text, timing)
        if not with_reference:
            layouts.append((target, slice(0, 0)))
            continue
        kept = prompt_window(timing.layout, target.num_frames, pipe.word_start_ids(), keep=prompt_keep,
                             share=prompt_share)
        layouts.append((timing.layout.slice_frames(kept.start, kept.stop) + target, kept))
    return layouts


def run_model(pipe, items: list[EvalItem], with_reference: bool, steps: int, seed: int,
              prompt_layout: str = "estimated", guidance: GuidanceConfig | None = None,
              prompt_keep: str = DEFAULT_PROMPT_KEEP, target_layout: str = "predicted",
              prompt_share: float = MAX_PROMPT_SHARE) -> list[SystemOutput]:
    """In-fill each item's target with the pipeline's transformer + scheduler (batched, seeded per item).
    ``guidance``: None = the defaults; without a reference its audio/visual strengths are off (no prompt)."""
    from omnitalker.frontend.face.codes import retime
    from omnitalker.pipeline.denoise import Segment, layout_batch

    if prompt_layout not in PROMPT_LAYOUTS:
        raise ValueError(f"prompt_layout must be one of {PROMPT_LAYOUTS}, got {prompt_layout!r}")
    if target_layout not in TARGET_LAYOUTS:
        raise ValueError(f"target_layout must be one of {TARGET_LAYOUTS}, got {target_layout!r}")
    layouts = (duration_layouts(pipe, items, with_reference, prompt_layout, prompt_keep, target_layout, prompt_share)
               if pipe.uses_durations else None)
    transformer = pipe.transformer
    device, dtype = transformer.device, transformer.dtype
    guidance = guidance if guidance is not None else GuidanceConfig()
    if not with_reference:
        guidance = dataclasses.replace(guidance, audio=0.0, visual=0.0)
    outputs = []
    for start in range(0, len(items), GENERATION_BATCH):
        batch = items[start : start + GENERATION_BATCH]
        texts, prompts, targets = [], [], []
        batch_layouts, windows = None, [slice(0, len(item.prompt.mel)) for item in batch]  # prompt frames kept
        if layouts is not None:
            batch_layouts = [layout for layout, _ in layouts[start : start + GENERATION_BATCH]]
            windows = [kept for _, kept in layouts[start : start + GENERATION_BATCH]]
        for row, item in enumerate(batch):
            frames = estimate_num_frames(len(item.prompt.mel), item.prompt.text, item.clip.text)
            text = normalize_text(item.clip.text)
            if with_reference:
                texts.append(prepare_reference_text(item.prompt.text) + text)
                prompts.append(windows[row].stop - windows[row].start)
            else:
                texts.append(text)
                prompts.append(0)
            targets.append(frames)
        text_durations = None
        if batch_layouts is not None:
            segments = [Segment(torch.zeros(p, 1), torch.zeros(p, 1), None, layout.num_frames - p, layout=layout)
                        for p, layout in zip(prompts, batch_layouts, strict=True)]
            text_ids, text_durations, totals = layout_batch(segments)
        else:
            text_ids = pipe.tokenizer.encode(texts)  # b nt
            tokens = (text_ids >= 0).sum(1).tolist()
            totals = [max(p + t, n + 1) for p, t, n in zip(prompts, targets, tokens, strict=True)]  # a frame per token
        num_frames = max(totals)
        audio_cond = torch.zeros(len(batch), num_frames, transformer.config.mel_dim)  # b n 100
        visual_cond = torch.zeros(len(batch), num_frames, transformer.config.visual_dim)  # b n 58
        prompt_mask = torch.zeros(len(batch), num_frames, dtype=torch.bool)  # b n
        for row, (item, prompt) in enumerate(zip(batch, prompts, strict=True)):
            if prompt:
                kept = windows[row]
                audio_cond[row, :prompt] = torch.from_numpy(item.prompt.mel[kept].astype(np.float32))
                visual_cond[row, :prompt] = _to_mel_rate(item.prompt.codes, len(item.prompt.mel))[kept]
                prompt_mask[row, :prompt] = True
        lengths = torch.tensor(totals)
        attention_mask = (torch.arange(num_frames)[None] < lengths[:, None]) if len(set(totals)) > 1 else None
        generators = [torch.Generator().manual_seed(seed + start + row) for row in range(len(batch))]
        out = sample(transformer, pipe.scheduler, text_ids=text_ids.to(device), num_frames=num_frames,
                     audio_cond=audio_cond.to(device, dtype), visual_cond=visual_cond.to(device, dtype),
                     cond_mask=prompt_mask.to(device),
                     attention_mask=None if attention_mask is None else attention_mask.to(device),
                     guidance=guidance, num_inference_steps=steps, generator=generators,
                     text_durations=None if text_durations is None else text_durations.to(device))
        for row, (prompt, total) in enumerate(zip(prompts, totals, strict=True)):
            mel = smooth_mel(out.audio[row, prompt:total].float().cpu(), pipe.config.get("mel_smoothing"))  # g 100
            codes = out.visual[row, prompt:total].float().cpu()  # g 58
            if prompt:  # the whole reference's head-motion size, as the pipeline does after sampling
                item = batch[row]
                codes = pipe.reference_motion(codes, _to_mel_rate(item.prompt.codes, len(item.prompt.mel)))  # g 58
            code_frames = max(1, round(len(mel) / MEL_FPS * CODE_FPS))
            outputs.append(SystemOutput(mel.numpy(), np.asarray(retime(codes, MEL_FPS, CODE_FPS, code_frames))))
    return outputs


# ------------------------------------------------------------------------------------------- metrics


def _vocode(pipe, mel: np.ndarray) -> np.ndarray:
    wave = pipe.vocoder.decode(torch.from_numpy(np.ascontiguousarray(mel.T, dtype=np.float32))[None])[0]  # nw
    return wave.float().clamp(-1.0, 1.0).cpu().numpy()


def _mean(values) -> float:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def whisper_wer_item(asr, wave: np.ndarray, sample_rate: int, text: str) -> dict:
    """Whisper's transcript of one vocoded item, its word edits and reference words (normalised)."""
    import inspect

    # what the judge heard even when unsure: unclear speech scores its word errors instead of being refused
    lenient = {"confident_only": False} if "confident_only" in inspect.signature(asr.transcribe).parameters else {}
    try:
        transcript = asr.transcribe(wave, sample_rate, **lenient)
    except ValueError:  # no words at all: unintelligible, every reference word deleted
        transcript = ""
    edits, words = word_edits(text, transcript)
    return {"whisper_transcript": transcript, "wer": edits / max(words, 1), "wer_edits": edits, "wer_words": words}


CER_KEYS = {"en": "cer", "zh": "cer_zh"}  # per-item and aggregated CER key of each language's judge


def judged_reference(clip: CorpusClip) -> str:
    """The normalised transcript a clip's CER is counted over: its text (English), its toned pinyin (Mandarin)."""
    return normalize_for_cer(pinyin_transcript(clip.text) if clip.lang == "zh" else clip.text)


def transcribe_by_lang(judges: dict, items: list[EvalItem], system_outputs: list[SystemOutput]) -> list[str | None]:
    """Each item's transcript by the recognizer of its language (``judges``: lang -> recognizer or None);
    None where that language has no recognizer."""
    transcripts: list[str | None] = [None] * len(items)
    for lang, judge in judges.items():
        rows = [i for i, item in enumerate(items) if item.clip.lang == lang]
        if judge is None or not rows:
            continue
        texts = judge.transcribe([torch.from_numpy(system_outputs[i].mel) for i in rows])
        for i, text in zip(rows, texts, strict=True):
            transcripts[i] = text
    return transcripts


def _pooled_cer(pairs: list[tuple[float, int]]) -> float | None:
    """Corpus CER from per-item (CER, reference characters): total edits / total characters."""
    letters = sum(n for _, n in pairs)
    return sum(cer * n for cer, n in pairs) / letters if letters else None


def score_items(items, outputs: dict[str, list[SystemOutput]], recognizer, pipe, similarity, pools,
                expert: AudioToMouthRegressor, asr=None, recognizer_zh=None) -> dict:
    """Fill per-item metrics and return {split: {system: aggregated metrics}}; `asr` (omnitalker.frontend.asr) adds WER,
    `recognizer_zh` (a ``lang="zh"`` CTCRecognizer) the Mandarin items' pinyin CER."""
    sample_rate = pipe.vocoder.config.sample_rate
    prompt_embeddings = {}
    if similarity is not None:
        for item in items:
            if item.prompt.key not in prompt_embeddings:
                prompt_embeddings[item.prompt.key] = similarity.embed(_vocode(pipe, item.prompt.mel.astype(np.float32)),
                                                                     sample_rate)
    results = {}
    for system_outputs in outputs.values():
        hypotheses = transcribe_by_lang({"en": recognizer, "zh": recognizer_zh}, items, system_outputs)
        for item, output, hypothesis in zip(items, system_outputs, hypotheses, strict=True):
            cer = None if hypothesis is None else character_error_rate(hypothesis, judged_reference(item.clip))
            output.metrics.update(
                transcript=hypothesis,  # by the item's language's recognizer (pinyin for Mandarin)
                cer=cer if item.clip.lang == "en" else None,
                cer_zh=cer if item.clip.lang == "zh" else None,
                dur_err=abs(len(output.mel) - len(item.clip.mel)) / len(item.clip.mel),
                lipsync=lipsync_score(output.codes, output.mel),
                expert_sync=sync_expert_score(output.codes, output.mel, expert),
            )
            with_wer = asr is not None and item.clip.lang == "en"
            if similarity is not None or with_wer:
                wave = _vocode(pipe, output.mel)
            if similarity is not None:
                output.metrics["sim_a"] = float(similarity.embed(wave, sample_rate) @ prompt_embeddings[item.prompt.key])
            if with_wer:
                output.metrics.update(whisper_wer_item(asr, wave, sample_rate, item.clip.text))
    for split in sorted({item.split for item in items}, key=list(EVAL_SPLITS).index):
        rows = [i for i, item in enumerate(items) if item.split == split]
        results[split] = {}
        for system, system_outputs in outputs.items():
            chosen = [system_outputs[i] for i in rows]
            speakers = defaultdict(list)
            for i in rows:
                speakers[items[i].clip.speaker].append(system_outputs[i].codes)
            sync: LipSyncScore = pooled_lipsync([o.metrics["lipsync"] for o in chosen])
            expert_sync: LipSyncScore = pooled_lipsync([o.metrics["expert_sync"] for o in chosen])
            cers = {key: _pooled_cer([(o.metrics[key], len(judged_reference(items[i].clip)))
                                      for i, o in zip(rows, chosen, strict=True) if o.metrics[key] is not None])
                    for key in CER_KEYS.values()}
            results[split][system] = {
                "items": len(chosen),
                **cers,
                **wer_summary(chosen, [outputs["ground_truth"][i] for i in rows] if "ground_truth" in outputs else None),
                "sync_corr": sync.correlation,
                "sync_lag": sync.lag_frames,
                "expert_corr": expert_sync.correlation,
                "expert_lag": expert_sync.lag_frames,
                "p_fid": _mean(p_fid(pools[speaker], codes) for speaker, codes in speakers.items()),
                "e_fid": _mean(e_fid(pools[speaker], codes) for speaker, codes in speakers.items()),
                "sim_a": _mean(o.metrics.get("sim_a") for o in chosen) if similarity is not None else None,
                "dur_err": _mean(o.metrics["dur_err"] for o in chosen),
            }
    return results


def wer_summary(chosen: list[SystemOutput], ground_truth: list[SystemOutput] | None) -> dict:
    """Corpus WER of the items Whisper judged, its bootstrap interval and, given the ground truth's outputs of the
    same items, the paired ratio to the ground truth's WER (the issue's target) with its interval."""
    judged = [i for i, o in enumerate(chosen) if o.metrics.get("wer_words")]
    if not judged:
        return {"wer": None, "wer_ci": None, "wer_ratio": None, "wer_ratio_ci": None}
    edits = [chosen[i].metrics["wer_edits"] for i in judged]
    words = [chosen[i].metrics["wer_words"] for i in judged]
    summary = {"wer": sum(edits) / sum(words), "wer_ci": wer_interval(edits, words) if len(judged) > 1 else None,
               "wer_ratio": None, "wer_ratio_ci": None}
    if ground_truth is not None:
        baseline = [ground_truth[i].metrics["wer_edits"] for i in judged]
        summary["wer_ratio"] = sum(edits) / sum(baseline) if sum(baseline) else (math.inf if sum(edits) else 1.0)
        summary["wer_ratio_ci"] = wer_ratio_interval(edits, baseline) if len(judged) > 1 else None
    return summary


# ------------------------------------------------------------------------------------------- run


def evaluate(pipe, recognizer, data_dir: str | Path, splits: list[str], max_samples: int, steps: int, seed: int,
             systems: tuple[str, ...] = SYSTEMS, similarity=None, log=print, asr=None,
             prompt_layout: str = "estimated", guidance: GuidanceConfig | None = None, recognizer_zh=None,
             prompt_keep: str = DEFAULT_PROMPT_KEEP, target_layout: str = "predicted",
             prompt_share: float = MAX_PROMPT_SHARE) -> dict:
    """Run the protocol of the module docstring; returns the JSON-ready result (`asr`: WER judge, None = no WER;
    `guidance`: None = the defaults; `recognizer_zh`: the Mandarin CER judge, None = no Mandarin CER;
    `prompt_share`: durations models' prompt cut, the pipeline's ``text_layout.MAX_PROMPT_SHARE`` by default)."""
    if recognizer_zh is not None and recognizer_zh.config.lang != "zh":
        raise ValueError(f"recognizer_zh reads {recognizer_zh.config.lang!r}: pass one trained with "
                         "python -m omnitalker.eval.train_recognizer --lang zh")
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise ValueError(f"unknown systems {unknown}: choose from {SYSTEMS}")
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    check_prompt_share(prompt_share)
    items, pools = plan_items(data_dir, splits, max_samples)
    log(f"{len(items)} items: " + ", ".join(f"{s} {sum(i.split == s for i in items)}" for s in splits))
    outputs, seconds = {}, {}
    for system in systems:
        start = time.perf_counter()
        if system == "ground_truth":
            outputs[system] = [SystemOutput(i.clip.mel.astype(np.float32), i.clip.codes) for i in items]
        elif system == "cascade":
            outputs[system] = run_cascade(items, data_dir, seed)
        else:
            outputs[system] = run_model(pipe, items, system == "reference", steps, seed, prompt_layout,
                                        guidance, prompt_keep, target_layout, prompt_share)
        seconds[system] = round(time.perf_counter() - start, 1)
        log(f"{system}: generated in {seconds[system]} s")
    expert = AudioToMouthRegressor.fit((clip.mel, clip.codes) for clip in read_split(data_dir, "train", with_codes=True))
    start = time.perf_counter()
    table = score_items(items, outputs, recognizer, pipe, similarity, pools, expert, asr=asr,
                        recognizer_zh=recognizer_zh)
    seconds["scoring"] = round(time.perf_counter() - start, 1)
    wrong_sentence = {lang: {} for lang in CER_KEYS}
    if "ground_truth" in outputs:  # chance level: the transcript of one clip scored against the next clip's text
        for split in table:
            for lang in CER_KEYS:
                rows = [i for i, item in enumerate(items) if item.split == split and item.clip.lang == lang
                        and outputs["ground_truth"][i].metrics["transcript"] is not None]
                if not rows:
                    continue
                pairs = [(outputs["ground_truth"][a].metrics["transcript"], judged_reference(items[b].clip))
                         for a, b in zip(rows, rows[1:] + rows[:1], strict=True)]
                wrong_sentence[lang][split] = _pooled_cer([(character_error_rate(hyp, text), len(text))
                                                           for hyp, text in pairs])
    per_item = [
        {"split": item.split, "key": item.clip.key, "lang": item.clip.lang, "speaker": item.clip.speaker,
         "text": item.clip.text, "prompt": item.prompt.key,
         **{system: {**{k: v for k, v in outputs[system][index].metrics.items() if k not in ("lipsync", "expert_sync")},
                     "sync_corr": outputs[system][index].metrics["lipsync"].correlation,
                     "sync_lag": outputs[system][index].metrics["lipsync"].lag_frames,
                     "expert_corr": outputs[system][index].metrics["expert_sync"].correlation,
                     "expert_lag": outputs[system][index].metrics["expert_sync"].lag_frames}
            for system in systems}}
        for index, item in enumerate(items)
    ]
    return {"config": {"data_dir": str(data_dir), "splits": splits, "max_samples": max_samples, "steps": steps,
                       "seed": seed, "systems": list(systems), "generation_seconds": seconds,
                       "prompt_layout": prompt_layout if getattr(pipe, "uses_durations", False) else None,
                       "prompt_keep": prompt_keep if getattr(pipe, "uses_durations", False) else None,
                       "prompt_share": prompt_share if getattr(pipe, "uses_durations", False) else None,
                       "target_layout": target_layout if getattr(pipe, "uses_durations", False) else None,
                       "guidance": dataclasses.asdict(guidance if guidance is not None else GuidanceConfig())},
            "results": table, "wrong_sentence_cer": wrong_sentence["en"],
            "wrong_sentence_cer_zh": wrong_sentence["zh"], "items": per_item}


def _format(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec)


def _with_interval(value, interval, spec: str) -> str:
    """``value (low–high)``; an infinite ratio (no ground-truth error to divide by) reads "inf"."""
    def show(x):
        return "inf" if isinstance(x, float) and math.isinf(x) else _format(x, spec)

    if value is None or interval is None:
        return show(value)
    return f"{show(value)} ({show(interval[0])}–{show(interval[1])})"


def markdown_table(result: dict) -> str:
    """The per-split, per-system table of :func:`evaluate`'s result (CER: English items' letters; CER zh:
    Mandarin items' toned pinyin)."""
    lines = ["| split | system | items | CER | CER zh | WER (95 % CI) | WER / ground truth (95 % CI) | sync corr | sync lag | "
             "expert corr | expert lag | P-FID | E-FID | SIM-A | dur err |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for split, systems in result["results"].items():
        for system, m in systems.items():
            lines.append(
                f"| {split} | {system} | {m['items']} | {_format(m['cer'], '.3f')} | {_format(m.get('cer_zh'), '.3f')} | "
                f"{_with_interval(m.get('wer'), m.get('wer_ci'), '.3f')} | "
                f"{_with_interval(m.get('wer_ratio'), m.get('wer_ratio_ci'), '.2f') if system != 'ground_truth' else '–'} | "
                f"{_format(m['sync_corr'], '.2f')} | "
                f"{m['sync_lag']:+d} | {_format(m['expert_corr'], '.2f')} | {m['expert_lag']:+d} | {_format(m['p_fid'], '.3g')} | {_format(m['e_fid'], '.3g')} | "
                f"{_format(m['sim_a'], '.3f')} | {_format(m['dur_err'], '.3f')} |"
            )
    return "\n".join(lines)
