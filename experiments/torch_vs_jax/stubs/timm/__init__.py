"""Stand-in for the parts of timm the official pose repositories import (see ../README.md)."""
