"""Training data: read the WebDataset corpus shards, batch clips by a frame budget, pad them into tensors.

The corpus (written by ``python -m omnitalker.data.synthetic`` or any tool using the same layout) is a folder
with ``index.json`` (per split: shards, sample keys, mel frame counts) and ``{split}-{i:05d}.tar`` shards
holding ``<key>.json`` (text, lang, speaker), ``<key>.mel.npy`` (n, 100) at 93.75 fps and ``<key>.codes.npy``
(T, 58) at 30 fps. Reading is random access: each shard's tar headers are scanned once and a sample is read
by seeking to its members, so a corpus never has to fit in memory.

    dataset = ShardDataset("data/synth", split="train")
    sampler = DynamicBatchSampler(dataset.lengths, frames_per_batch=8000, max_samples=32, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
    batch = next(iter(loader))   # mel b n 100, codes b n 58, text_ids b nt (pad -1), lengths b

With a ``PhonemeTokenizer`` the text is the clip's stored espeak phoneme events laid out by
``omnitalker.frontend.phonemes`` (pauses, word boundaries, Mandarin tones), and each sample also carries
``text_durations`` (frames per token, summing to the clip's mel frames) for the "durations" text layout.
"""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Sampler

from omnitalker.frontend.face.codes import CODE_FPS, MEL_FPS, VISUAL_CODE_DIM, resample_codes
from omnitalker.frontend.phonemes import PhonemeTokenizer, events_to_sequence, frame_durations, pinyin_tones
from omnitalker.frontend.text import PAD_ID, OmniTalkerTokenizer

MEL_DIM = 100
# Codes upsampled to the mel rate may differ from the mel length by rounding; more means broken alignment.
DEFAULT_MAX_MISMATCH_FRAMES = 3
SAMPLE_MEMBERS = ("json", "mel.npy", "codes.npy")


@dataclass
class TrainingSample:
    """One clip ready for batching: mel n 100, codes n 58 (at the mel rate), text ids nt."""

    key: str
    mel: torch.Tensor
    codes: torch.Tensor
    text_ids: torch.Tensor
    speaker: str
    text_durations: torch.Tensor | None = None  # nt frames per token (phoneme tokenizer only)
    prompt_frames: int = 0  # > 0: the first frames are another clip's (training/cross_prompt.py), the rest the target


def _scan_shard(path: Path) -> dict[str, dict[str, tuple[int, int]]]:
    """key -> {member suffix: (data offset, size)} for every file in a tar shard; clear error if unreadable."""
    if not path.is_file():
        raise ValueError(f"shard {path} is listed in index.json but missing: rebuild or re-copy the corpus")
    file_size = path.stat().st_size
    members: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                if info.offset_data + info.size > file_size:
                    raise tarfile.ReadError(f"member {info.name} ends past the end of the file")
                key, _, suffix = info.name.partition(".")
                members.setdefault(key, {})[suffix] = (info.offset_data, info.size)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ValueError(f"shard {path} is corrupt or truncated ({error}): rebuild or re-copy it") from error
    return members


class ShardDataset(Dataset):
    """Map-style dataset over one split of a shard corpus.

    Args:
        data_dir: corpus folder with ``index.json``.
        split: which split of the index (e.g. ``train``, ``val_texts``).
        tokenizer: text -> ids (default: the packaged character vocab); a ``PhonemeTokenizer`` reads the
            clips' phoneme events instead and adds frame durations.
        max_mismatch_frames: how far (in mel frames) the codes' duration may differ from the mel's.
    """

    def __init__(
        self,
        data_dir: str | Path,
        split: str = "train",
        tokenizer: OmniTalkerTokenizer | PhonemeTokenizer | None = None,
        max_mismatch_frames: int = DEFAULT_MAX_MISMATCH_FRAMES,
    ):
        self.data_dir = Path(data_dir)
        index_path = self.data_dir / "index.json"
        if not index_path.is_file():
            raise ValueError(
                f"no index.json in {self.data_dir}: point data.dir at a corpus folder "
                "(build one with python -m omnitalker.data.synthetic --out DIR)"
            )
        try:
            index = json.loads(index_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{index_path} is not valid JSON ({error}): rebuild the corpus") from error
        splits = index.get("splits", {})
        if split not in splits:
            raise ValueError(f"split {split!r} not in {index_path}; available: {sorted(splits)}")
        self.split = split
        self.tokenizer = tokenizer or OmniTalkerTokenizer.default()
        self.max_mismatch_frames = max_mismatch_frames
        self.items: list[tuple[Path, str]] = []  # (shard path, key)
        self.lengths: list[int] = []  # mel frames per sample, from the index (no shard reads needed to batch)
        self._members: dict[Path, dict[str, dict[str, tuple[int, int]]]] = {}
        for shard in splits[split]["shards"]:
            path = self.data_dir / shard["name"]
            members = _scan_shard(path)
            for entry in shard["samples"]:
                found = members.get(entry["key"], {})
                missing = [suffix for suffix in SAMPLE_MEMBERS if suffix not in found]
                if missing:
                    raise ValueError(
                        f"shard {path} lacks {missing} of sample {entry['key']} listed in index.json: "
                        "the shard is truncated or does not belong to this index"
                    )
                self.items.append((path, entry["key"]))
                self.lengths.append(int(entry["num_frames"]))
            self._members[path] = members
        if not self.items:
            raise ValueError(f"split {split!r} of {self.data_dir} has no samples")

    def __len__(self) -> int:
        return len(self.items)

    def _read(self, path: Path, key: str, suffixes: tuple[str, ...] = SAMPLE_MEMBERS) -> dict[str, bytes]:
        members = self._members[path][key]
        out = {}
        with open(path, "rb") as handle:
            for suffix in suffixes:
                offset, size = members[suffix]
                handle.seek(offset)
                out[suffix] = handle.read(size)
                if len(out[suffix]) != size:
                    raise ValueError(f"shard {path} is truncated inside sample {key}: rebuild or re-copy it")
        return out

    def speaker_of(self, index: int) -> str:
        """The speaker id of clip ``index`` (reads only its small JSON member)."""
        path, key = self.items[index]
        raw = self._read(path, key, ("json",))["json"]
        try:
            return str(json.loads(raw).get("speaker", ""))
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"clip {key} in shard {path} has unreadable metadata ({error}): the shard is corrupt") from error

    def __getitem__(self, index: int) -> TrainingSample:
        path, key = self.items[index]
        raw = self._read(path, key)
        try:
            meta = json.loads(raw["json"])
            mel = np.load(io.BytesIO(raw["mel.npy"]), allow_pickle=False)
            codes = np.load(io.BytesIO(raw["codes.npy"]), allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(f"clip {key} in shard {path} cannot be decoded ({error}): the shard is corrupt") from error
        if mel.ndim != 2 or mel.shape[1] != MEL_DIM:
            raise ValueError(f"clip {key} in shard {path}: mel must be (frames, {MEL_DIM}), got {mel.shape}")
        if codes.ndim != 2 or codes.shape[1] != VISUAL_CODE_DIM:
            raise ValueError(f"clip {key} in shard {path}: codes must be (frames, {VISUAL_CODE_DIM}), got {codes.shape}")
        num_frames = len(mel)
        covered = int(round(len(codes) / CODE_FPS * MEL_FPS))  # mel frames the codes' duration spans
        if abs(covered - num_frames) > self.max_mismatch_frames:
            raise ValueError(
                f"clip {key} in shard {path}: mel has {num_frames} frames but codes cover {covered} "
                f"({len(codes)} frames at {CODE_FPS:g} fps); the streams are not aligned"
            )
        # Upsample to the mel rate at the codes' own duration, then cut/pad (edge) to exactly the mel length.
        codes = resample_codes(codes.astype(np.float32), CODE_FPS, MEL_FPS, num_frames=covered)  # covered 58
        if covered >= num_frames:
            codes = codes[:num_frames]
        else:
            codes = np.concatenate([codes, np.repeat(codes[-1:], num_frames - covered, axis=0)])
        durations = None
        if isinstance(self.tokenizer, PhonemeTokenizer):
            text_ids, durations = self.phoneme_layout(meta, num_frames, f"clip {key} in shard {path}")
        else:
            text_ids = self.tokenizer(meta["text"])[0]  # nt
        return TrainingSample(
            key=key,
            mel=torch.from_numpy(mel.astype(np.float32)),
            codes=torch.from_numpy(np.ascontiguousarray(codes, dtype=np.float32)),
            text_ids=text_ids,
            speaker=str(meta.get("speaker", "")),
            text_durations=durations,
        )

    def phoneme_layout(self, meta: dict, num_frames: int, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Phoneme ids (nt) and frames per token (nt, summing to num_frames) from a clip's stored events."""
        phonemes = meta.get("phonemes")
        if not phonemes:
            raise ValueError(
                f"{where} has no phoneme timings: the 'durations' text layout needs them (corpora from "
                "python -m omnitalker.data.synthetic have them; real-video clips do not yet). Train this corpus "
                "with the 'filler' or 'average' layout."
            )
        tones = pinyin_tones(meta["text"]) if meta.get("lang") == "zh" else ()
        seq = events_to_sequence(phonemes, meta.get("word_starts", ()), tones, num_frames / MEL_FPS)
        durations = frame_durations(seq, num_frames)
        return (torch.tensor(self.tokenizer.convert_tokens_to_ids(seq.tokens), dtype=torch.long),
                torch.from_numpy(durations).long())


class ShardDatasets(ConcatDataset):
    """Several corpora as one (torch's ``ConcatDataset``), with the ``lengths`` the batch sampler reads: each a
    ``ShardDataset`` or a wrapper of one with its own ``lengths`` (``training/cross_prompt.py``)."""

    def __init__(self, datasets: list[Dataset]):
        super().__init__(datasets)
        self.lengths = [length for dataset in datasets for length in dataset.lengths]


def training_clips(data, tokenizer: OmniTalkerTokenizer | PhonemeTokenizer | None = None) -> ShardDataset | ShardDatasets:
    """The training split of ``data.dir`` and of every ``data.extra_train_dirs`` corpus (a config DataSection)."""
    dirs = [data.dir, *data.extra_train_dirs]
    sets = [ShardDataset(d, data.train_split, tokenizer, data.max_mismatch_frames) for d in dirs]
    return sets[0] if len(sets) == 1 else ShardDatasets(sets)


VISUAL_STD_FLOOR = 1e-3  # codes that never move (e.g. a constant log_scale) keep a usable scale
STATISTICS_MAX_SAMPLES = 512


def visual_code_statistics(dataset: ShardDataset, max_samples: int = STATISTICS_MAX_SAMPLES) -> tuple[list, list]:
    """Per-dimension mean and std of the visual codes over (up to ``max_samples`` evenly spaced) clips.

    They become the transformer's ``visual_mean`` / ``visual_std`` so the model learns codes of unit scale.
    """
    if len(dataset) == 0:
        raise ValueError("the training split is empty: no clips to compute visual-code statistics from")
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(max_samples, len(dataset))).round().astype(int))
    codes = torch.cat([dataset[int(i)].codes for i in picks]).double()  # frames 58
    mean, std = codes.mean(0), codes.std(0).clamp_min(VISUAL_STD_FLOOR)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


@dataclass
class Batch:
    """Padded batch. mel b n 100 and codes b n 58 (0-padded), text_ids b nt (-1-padded), lengths b."""

    mel: torch.Tensor
    codes: torch.Tensor
    text_ids: torch.Tensor
    lengths: torch.Tensor
    keys: list[str]
    text_durations: torch.Tensor | None = None  # b nt frames per token (0-padded), phoneme layouts only
    prompt_frames: torch.Tensor | None = None  # b: frames of another clip before the target (0: none)

    def to(self, device: torch.device | str) -> Batch:
        durations = None if self.text_durations is None else self.text_durations.to(device)
        prompts = None if self.prompt_frames is None else self.prompt_frames.to(device)
        return Batch(self.mel.to(device), self.codes.to(device), self.text_ids.to(device),
                     self.lengths.to(device), self.keys, durations, prompts)

    @property
    def num_frames(self) -> int:
        """Valid (unpadded) mel frames in the batch."""
        return int(self.lengths.sum())


def collate(samples: list[TrainingSample]) -> Batch:
    """Pad a list of samples into a :class:`Batch`."""
    lengths = torch.tensor([len(sample.mel) for sample in samples])  # b
    frames, tokens = int(lengths.max()), max(len(sample.text_ids) for sample in samples)
    mel = torch.zeros(len(samples), frames, MEL_DIM)  # b n 100
    codes = torch.zeros(len(samples), frames, VISUAL_CODE_DIM)  # b n 58
    text_ids = torch.full((len(samples), tokens), PAD_ID, dtype=torch.long)  # b nt
    with_durations = [sample.text_durations is not None for sample in samples]
    if any(with_durations) and not all(with_durations):
        raise ValueError("a batch mixes clips with and without text durations: use one tokenizer for all")
    durations = torch.zeros(len(samples), tokens, dtype=torch.long) if all(with_durations) else None  # b nt
    for row, sample in enumerate(samples):
        mel[row, : len(sample.mel)] = sample.mel
        codes[row, : len(sample.codes)] = sample.codes
        text_ids[row, : len(sample.text_ids)] = sample.text_ids
        if durations is not None:
            durations[row, : len(sample.text_durations)] = sample.text_durations
    prompt_frames = torch.tensor([sample.prompt_frames for sample in samples])  # b
    return Batch(mel, codes, text_ids, lengths, [sample.key for sample in samples], durations, prompt_frames)


def frame_budget_batches(lengths: list[int], frames_per_batch: int, max_samples: int, order: np.ndarray) -> list[list[int]]:
    """Greedy batches over ``order`` (indices sorted by length): padded frames (longest x count) stay within
    ``frames_per_batch`` and each batch has at most ``max_samples`` clips. Clips longer than the budget
    are left out."""
    batches, batch, longest = [], [], 0
    for index in order:
        length = lengths[index]
        if length > frames_per_batch:
            continue
        grown = max(longest, length)
        if batch and (grown * (len(batch) + 1) > frames_per_batch or len(batch) >= max_samples):
            batches.append(batch)
            batch, grown = [], length
        batch.append(int(index))
        longest = grown
    if batch:
        batches.append(batch)
    return batches


class DynamicBatchSampler(Sampler[list[int]]):
    """Frame-budget batches, reshuffled every epoch, split evenly across processes, resumable mid-epoch.

    Each epoch: clips are sorted by length (random order among equal lengths), cut greedily into batches
    whose padded size stays within ``frames_per_batch`` mel frames, and the batches are shuffled. Batch
    ``j`` goes to process ``j % num_replicas``; the tail that would give some process one batch more is
    dropped, so every process runs the same number of steps (DDP needs that). Everything is a function
    of (seed, epoch), so all processes agree without talking to each other.

    With ``curriculum_epochs`` > 0, epochs before it use only clips of at most ``curriculum_max_frames``
    frames (short utterances first, a convergence aid measured in BENCHMARKS.md).

    The trainer counts the batches it consumed and resumes with ``set_epoch(epoch, position)`` (the count
    kept by the sampler itself would run ahead when DataLoader workers prefetch).
    """

    def __init__(
        self,
        lengths: list[int],
        frames_per_batch: int,
        max_samples: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        curriculum_max_frames: int = 0,
        curriculum_epochs: int = 0,
    ):
        if frames_per_batch < 1 or max_samples < 1:
            raise ValueError(f"frames_per_batch and max_samples must be >= 1, got {frames_per_batch}, {max_samples}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")
        self.lengths = [int(length) for length in lengths]
        self.frames_per_batch, self.max_samples = frames_per_batch, max_samples
        self.seed, self.num_replicas, self.rank, self.shuffle = seed, num_replicas, rank, shuffle
        self.curriculum_max_frames, self.curriculum_epochs = curriculum_max_frames, curriculum_epochs
        if curriculum_epochs and not any(0 < length <= curriculum_max_frames for length in lengths):
            raise ValueError(
                f"curriculum_max_frames={curriculum_max_frames}: no clip is that short, so the curriculum "
                "epochs would be empty; raise the limit"
            )
        self.epoch = 0
        self.position = 0  # first batch of the epoch to hand out
        too_long = sum(length > frames_per_batch for length in self.lengths)
        if too_long:
            warnings.warn(
                f"{too_long} of {len(self.lengths)} clips are longer than frames_per_batch={frames_per_batch} "
                "and are skipped: raise frames_per_batch to train on them",
                stacklevel=2,
            )
        if len(self) == 0:
            raise ValueError(
                f"no batch for process {rank} of {num_replicas}: {len(self.lengths)} clips give fewer batches than "
                "processes; use more data, a smaller frames_per_batch or fewer processes"
            )

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This process's batches of ``epoch``."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.shuffle:
            order = np.lexsort((rng.permutation(len(self.lengths)), self.lengths))  # by length, random ties
        else:
            order = np.argsort(self.lengths, kind="stable")
        if epoch < self.curriculum_epochs:  # short clips first
            order = order[np.asarray(self.lengths)[order] <= self.curriculum_max_frames]
        batches = frame_budget_batches(self.lengths, self.frames_per_batch, self.max_samples, order)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        per_process = len(batches) // self.num_replicas
        return batches[self.rank :: self.num_replicas][:per_process]

    def __len__(self) -> int:
        return len(self.epoch_batches(self.epoch))

    def set_epoch(self, epoch: int, position: int = 0) -> None:
        """Iterate ``epoch`` from its ``position``-th batch on (resumption skips what was already trained)."""
        self.epoch, self.position = epoch, position

    def __iter__(self):
        yield from self.epoch_batches(self.epoch)[self.position :]
