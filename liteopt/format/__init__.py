"""The .nb file: `write(graph, path, manifest)` and `read(path)` (see nb.fbs for the layout)."""
from .read import NbModel, read
from .write import Manifest, to_bytes, write

__all__ = ["Manifest", "NbModel", "read", "to_bytes", "write"]
