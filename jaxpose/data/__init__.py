"""Data: TFDS builders' helpers, the grain input pipeline and test fixtures (host side, numpy).

The command lines are in jaxpose/cli/data.py (`jaxpose data build|list|bench|gmm`).

Modules (import the one you need; nothing heavy is imported here):
  bodies     SMPL-format body parameters in datasets: camera frames, mirroring, host vertices
  build      build / ensure_built datasets, data_dir resolution, NotBuiltError
  deepmimic  DeepMimic clips from pybullet -> H36M-17 (the embedded real dataset)
  deepmimic_render  the DeepMimic motion rendered as 4-view images (the embedded image dataset)
  images     decode/encode, crop matrices, warps, augmentation, label transforms (OpenCV)
  image_pipeline  grain over per-frame image records (pipeline delegates to it for kind 'image')
  deepmimic_smpl  the DeepMimic clips retargeted onto the synthetic SMPL-format body
  gmm        DiffPose-style 2D Gaussian mixtures (`jaxpose data gmm` writes the files)
  io         readers of the official files with precise DataFormatError messages
  paired     two-domain training iterator (target stream + cycled source stream)
  pipeline   train_iterator, eval_batches, sequence_table, num_windows, reassemble, flip_batch
  sources    SequenceStore over tfds.data_source (no TensorFlow)
  synthetic  tiny files in every official format, for tests
  transforms pure per-window transforms (normalise, confidence, root-relative, flip)
  windows    training windows, evaluation tiling, reassembly
"""
