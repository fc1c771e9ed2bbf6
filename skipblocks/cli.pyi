from collections.abc import Sequence

__all__ = ["main"]

# the exit status (sys.exit(main()))
def main(argv: Sequence[str] | None = None) -> int: ...
