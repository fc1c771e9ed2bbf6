"""PyTorch reference oracle for skipblocks (imports torch; optional).

``import skipblocks`` never imports this package.  The tests and
``python -m skipblocks`` use it to compare skipblocks against the document's
own torch modules.
"""

from .document import (  # noqa: F401
    ResidualBlock,
    Dense_Layer,
    Dense_Block,
    SEAttention,
    resnet_downsample,
    resnet_demo,
    densenet_demo,
    se_demo,
    DOCUMENT_INPUTS,
    document_input,
    parity_error,
)

__all__ = [
    "ResidualBlock", "Dense_Layer", "Dense_Block", "SEAttention",
    "resnet_downsample", "resnet_demo", "densenet_demo", "se_demo",
    "DOCUMENT_INPUTS", "document_input", "parity_error",
]
