"""DeepMimic on the synthetic SMPL-format body (registers the TFDS dataset `deepmimic_smpl`)."""

from tfds_builders.deepmimic_smpl.deepmimic_smpl_dataset_builder import Builder

__all__ = ['Builder']
