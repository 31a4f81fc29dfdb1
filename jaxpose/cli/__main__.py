"""`python -m jaxpose.cli <command> [flags]`, the same as the `jaxpose` console script."""

import sys

from jaxpose.cli import main

sys.exit(main())
