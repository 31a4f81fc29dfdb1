"""jaxpose: JAX/Flax reimplementations of 3D human pose estimation papers.

Importing `jaxpose` is cheap: it imports no TensorFlow, builds nothing and touches no device.
Sub-packages: geometry, metrics, data, models, methods, eval, train, cli, convert, bench, viz;
modules: sharding, losses, types. Imports run one way (README "Layout"; tests/test_import_graph.py).
"""

__version__ = '0.1.0'
