#!/usr/bin/env bash
# The synthetic corpora of the bundled demo (weights/omnitalker-demo): its training data and its two
# evaluation sets, in one place. About 30 s each on 2 CPU cores, ~420 MB each for training, ~210 MB for evaluation.
#
#   bash scripts/demo_corpora.sh                 # everything the demo recipe and the model card use
#   EXTRA_CORPORA=16 bash scripts/demo_corpora.sh # more 48-voice corpora (seeds 1..16) to continue training with
#
# Training:   data/synth-demo (36 voices, seed 0; its val splits are the held-out sentences and voices) and
#             data/synth-more, data/synth-more2 ... (48 voices each, seeds 1, 2, ...): configs/train/demo_cpu.yaml's
#             data.dir and data.extra_train_dirs.
# Evaluation: data/synth-eval (the demo's voices speaking unseen template-grammar sentences; 3 English voices held
#             out) and data/synth-eval-voices (9 more English voices no training corpus has; only its
#             val_speakers split is used). Commands: BENCHMARKS.md, "Demo checkpoint, durations layout".
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}"
EXTRA_CORPORA="${EXTRA_CORPORA:-12}"  # the shipped demo's recipe: synth-more .. synth-more12
WORKERS="${WORKERS:-2}"
TRAIN="--hours 1.6 --langs en,en,zh --text-source mixed --max-seconds 8 --with-audio --workers $WORKERS"
EVAL="--hours 0.8 --text-source grammar --max-seconds 8 --with-audio --workers $WORKERS"

corpus() {  # corpus OUT ARGS...: skip a corpus that is already complete (its index.json is written last)
  local out="$1"; shift
  if [[ -f "$out/index.json" ]]; then echo "$out: exists"; return; fi
  python -m omnitalker.data.synthetic --out "$out" "$@"
}

corpus data/synth-demo --speakers 36 $TRAIN
for seed in $(seq 1 "$EXTRA_CORPORA"); do
  corpus "data/synth-more$([[ $seed == 1 ]] || echo "$seed")" --speakers 48 --seed "$seed" $TRAIN
done
corpus data/synth-eval --speakers 36 --langs en,en,zh --seed 0 --val-text-fraction 0.3 $EVAL
corpus data/synth-eval-voices --speakers 60 --langs en --seed 100 $EVAL
