"""Human3.6M builder (registers the TFDS dataset `h36m`)."""

from tfds_builders.h36m.h36m_dataset_builder import Builder

__all__ = ['Builder']
