"""DeepMimic SMPL-body render builder (registers the TFDS dataset `deepmimic_smpl_render`)."""

from tfds_builders.deepmimic_smpl_render.deepmimic_smpl_render_dataset_builder import Builder

__all__ = ['Builder']
