from collections.abc import Sequence

# python -m skipblocks [demo | parity | bench | info | inspect FILE | convert IN OUT]: the exit status
def main(argv: Sequence[str] | None = None) -> int: ...
