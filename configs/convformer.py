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
from jaxpose.models import convformer

REFERENCE = {
  'source': 'ConvFormer, arXiv 2304.02147: the result tables are not available '
  '(research/convformer.md section 5); no numbers recorded',
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, variant='243', smoke=False, data='h36m')
  if a.variant not in convformer.VARIANTS:
    raise ValueError(
      f'Unknown ConvFormer variant {a.variant!r}; valid: {", ".join(convformer.VARIANTS)}'
    )
  t = convformer.VARIANTS[a.variant]['num_frames']
  c = mixste.get_config(f'{t},data={a.data}')  # the recipe (data, loss, optimiser, schedule)
  c.model.name, c.model.variant = 'convformer', a.variant
  if a.smoke:
    common.smoke(c)
  return c


def get_sweep(arg: str | None = None):
  del arg
  variants = ['27', '81', '243']
  return common.zipit(
    common.sweep('model.variant', variants),
    common.sweep('data.frames', [int(v) for v in variants]),
    common.sweep('data.stride', [int(v) for v in variants]),
  )
