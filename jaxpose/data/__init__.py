"""Data: TFDS builders' helpers, the grain input pipeline and test fixtures.

Modules (import the one you need; nothing heavy is imported here):
  build      build / ensure_built datasets, data_dir resolution, NotBuiltError
  cli        `jaxpose data build|list|bench`
  deepmimic  DeepMimic clips from pybullet -> H36M-17 (the embedded real dataset)
  deepmimic_render  the DeepMimic motion rendered as 4-view images (the embedded image dataset)
  images     decode/encode, crop matrices, warps, augmentation, label transforms (OpenCV)
  image_pipeline  grain over per-frame image records (pipeline delegates to it for kind 'image')
  io         readers of the official files with precise DataFormatError messages
  pipeline   train_iterator, eval_batches, sequence_table, num_windows, reassemble, flip_batch
  sources    SequenceStore over tfds.data_source (no TensorFlow)
  synthetic  tiny files in every official format, for tests
  transforms pure per-window transforms (normalise, confidence, root-relative, flip)
  windows    training windows, evaluation tiling, reassembly
"""
