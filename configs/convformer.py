"""ConvFormer (arXiv 2304.02147; re-implementation from the abstract, unverified).

No official code or training recipe is known (research/convformer.md), so this config trains the
reconstruction with MixSTE's recipe, its closest published relative (seq2seq, alternating
spatial/temporal blocks): H36M CPN 2D, non-overlapping T-frame chunks, AdamW lr 4e-5, weight
decay 0.1, lr x0.99 per epoch, 120 epochs, loss w-MPJPE + 0.5 TC + 2 MPJVE, flip augmentation and
flip test. Report N-MPJPE (Protocol III) too: it is the paper's headline metric.

Run book:
  jaxpose train --config configs/convformer.py:243 --workdir runs/convformer
    Expected: no reference numbers exist; compare against MixSTE trained with the same recipe.
  jaxpose train --config configs/convformer.py:243_d512 --workdir runs/convformer_d512
    MixSTE's width, for the equal-size comparison.
  jaxpose train --config configs/convformer.py:27,smoke --workdir /tmp/convformer_smoke
    seconds on a CPU.
"""

from __future__ import annotations

from configs import common, mixste

# Window length of each variant (jaxpose/models/convformer.py VARIANTS; tests/configs checks them).
FRAMES = {'243': 243, '81': 81, '27': 27, '243_d512': 243}
# The smoke run (`:smoke`): the model at its test size (TEST_OVERRIDES of
# jaxpose/models/convformer.py) and the window length that tiny model takes.
SMOKE_MODEL = {'num_frames': 9, 'dim': 32, 'depth': 2}
SMOKE_FRAMES = 9

REFERENCE = {
  'source': 'ConvFormer, arXiv 2304.02147: the result tables are not available '
  '(research/convformer.md section 5); no numbers recorded',
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, variant='243', smoke=False, data='h36m')
  if a.variant not in FRAMES:
    raise ValueError(f'Unknown ConvFormer variant {a.variant!r}; valid: {", ".join(FRAMES)}')
  t = FRAMES[a.variant]
  c = mixste.get_config(f'{t},data={a.data}')  # the recipe (data, loss, optimiser, schedule)
  c.model.name, c.model.variant = 'convformer', a.variant
  if a.smoke:
    common.smoke(c, SMOKE_FRAMES, SMOKE_MODEL)
  return c


def get_sweep(arg: str | None = None):
  del arg
  variants = ['27', '81', '243']
  return common.zipit(
    common.sweep('model.variant', variants),
    common.sweep('data.frames', [int(v) for v in variants]),
    common.sweep('data.stride', [int(v) for v in variants]),
  )
