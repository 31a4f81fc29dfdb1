"""MPI-INF-3DHP builder (registers the TFDS dataset `mpi_inf_3dhp`)."""

from tfds_builders.mpi_inf_3dhp.mpi_inf_3dhp_dataset_builder import Builder

__all__ = ['Builder']
