"""3DPW builder (registers the TFDS dataset `pw3d`)."""

from tfds_builders.pw3d.pw3d_dataset_builder import Builder

__all__ = ['Builder']
