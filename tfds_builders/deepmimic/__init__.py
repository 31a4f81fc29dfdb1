"""DeepMimic builder (registers the TFDS dataset `deepmimic`)."""

from tfds_builders.deepmimic.deepmimic_dataset_builder import Builder

__all__ = ['Builder']
