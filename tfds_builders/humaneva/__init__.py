"""HumanEva-I builder (registers the TFDS dataset `humaneva`)."""

from tfds_builders.humaneva.humaneva_dataset_builder import Builder

__all__ = ['Builder']
