"""The error classes of liteopt. Every failure a user can cause ends in one of these, never a traceback."""


class LiteoptError(Exception):
    """Base class: the message names the file, node or flag at fault."""


class ConversionError(LiteoptError):
    """A source model cannot be read or converted (names the file and node)."""


class UnsupportedOpsError(ConversionError):
    """The model uses op types we do not support; lists all of them at once."""

    def __init__(self, message: str, unsupported: dict[str, list[str]]):
        super().__init__(message)
        self.unsupported = unsupported  # source op type -> node names

    @classmethod
    def listing(cls, source: str, unsupported: dict[str, list[str]], kind: str = "op type",
                unit: str = "node") -> "UnsupportedOpsError":
        """The one report every front end gives: each unsupported type with its count and first names."""
        total = sum(len(v) for v in unsupported.values())
        items = "; ".join(f"'{k}' x{len(v)} ({', '.join(v[:5])}{', ...' if len(v) > 5 else ''})"
                          for k, v in unsupported.items())
        return cls(f"{source}: this model is not supported, because {len(unsupported)} {kind}(s) ({total} "
                   f"{unit}(s)) are not supported: {items}", unsupported)


class ShapeError(LiteoptError):
    """Shapes or attributes of a node are inconsistent."""


class NbFormatError(LiteoptError):
    """A .nb file is missing, truncated, corrupt or of an unsupported version."""
