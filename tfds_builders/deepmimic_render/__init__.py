"""DeepMimic render builder (registers the TFDS dataset `deepmimic_render`)."""

from tfds_builders.deepmimic_render.deepmimic_render_dataset_builder import Builder

__all__ = ['Builder']
