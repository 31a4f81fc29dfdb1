"""jaxpose: JAX/Flax reimplementations of 3D human pose estimation papers.

Importing `jaxpose` is cheap: it imports no TensorFlow, builds nothing and touches no device.
Sub-packages: geometry, metrics, data, models, methods, eval, train, convert, bench, viz.
"""

__version__ = '0.1.0'
