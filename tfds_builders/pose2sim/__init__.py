"""Pose2Sim demo builder (registers the optional TFDS dataset `pose2sim`)."""

from tfds_builders.pose2sim.pose2sim_dataset_builder import Builder

__all__ = ['Builder']
