"""python -m skipblocks [demo]: run the document's three demos with skipblocks,
then demos of its other systems: U-Net (transposed and bilinear), SE inside a
ResNet block and inside an Inception module.

Prints each demo's output shape, as the document does. When torch is
installed, also builds the document's torch modules (skipblocks.reference),
copies their weights into the skipblocks twins, and prints the parity error
max|skipblocks - torch| / max(1, max|torch|) of the outputs in train mode
(torch's default after construction, as the document runs) and in eval mode,
and of the BatchNorm running statistics after the train-mode forward.

python -m skipblocks inspect FILE: list a weight file's keys, shapes and dtypes.
python -m skipblocks convert IN OUT [--cast float32]: convert between torch
.pt/.pth, .safetensors and .npz. Neither needs torch.
"""
import argparse
import sys

import numpy as np

from . import demos


def _input(shape, how, rng):
    return (rng.random(shape) if how == "rand" else rng.standard_normal(shape)).astype(np.float32)


def _all_demos():
    """name -> (skipblocks builder, input shape, how the input is drawn)."""
    return {**demos.DEMOS, **demos.SYSTEM_DEMOS}


def _torch_builder(reference, name):
    if name in reference.DOCUMENT_INPUTS:
        return reference.DOCUMENT_INPUTS[name]["builder"]
    from .reference import systems
    return systems.SYSTEM_DEMOS[name]


def _run_without_torch(rng):
    for name, (builder, shape, how) in _all_demos().items():
        model = builder()
        out = model(_input(shape, how, rng))
        print(f"{name:13s} input {shape} -> output {out.shape}")


def _run_with_torch(rng, torch, reference):
    worst = 0.0
    print(f"{'demo':13s} {'input':>18s} {'output':>18s}  {'train':>9s} {'stats':>9s} "
          f"{'eval':>9s}")
    for name, (builder, shape, how) in _all_demos().items():
        theirs = _torch_builder(reference, name)()
        ours = builder()
        ours.load_state_dict(theirs.state_dict())
        x = _input(shape, how, rng)
        with torch.no_grad():
            ref_train = theirs(torch.from_numpy(x))
        out_train = ours(x)
        err_train = reference.parity_error(out_train, ref_train)
        ref_sd, our_sd = theirs.state_dict(), ours.state_dict()
        err_stats = max((reference.parity_error(np.asarray(our_sd[k], np.float64),
                                                ref_sd[k].double())
                         for k in ref_sd), default=0.0)
        theirs.eval()
        ours.eval()
        with torch.no_grad():
            ref_eval = theirs(torch.from_numpy(x))
        err_eval = reference.parity_error(ours(x), ref_eval)
        worst = max(worst, err_train, err_stats, err_eval)
        print(f"{name:13s} {str(shape):>18s} {str(out_train.shape):>18s}  {err_train:9.2e} "
              f"{err_stats:9.2e} {err_eval:9.2e}")
    print(f"parity error: max|skipblocks - torch| / max(1, max|torch|); worst {worst:.2e} "
          f"(bound 1e-4)")
    return worst


def _demo_options(parser):
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and inputs")
    parser.add_argument("--no-torch", action="store_true",
                        help="do not compare with torch even if it is installed")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skipblocks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _demo_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="{demo,inspect,convert}")
    _demo_options(commands.add_parser("demo", help="run the demos (the default)"))
    inspect = commands.add_parser(
        "inspect", help="list a weight file's tensors (keys, shapes, dtypes) and totals")
    inspect.add_argument("file", help="a .pt/.pth (torch), .safetensors or .npz file")
    convert = commands.add_parser(
        "convert", help="convert a weight file between .pt, .safetensors and .npz",
        description="Convert a weight file between torch .pt/.pth, .safetensors and .npz "
                    "(the output format comes from OUT's extension), copying every "
                    "tensor's bytes exactly. A checkpoint going to .safetensors or .npz "
                    "keeps only the state_dict found in it.")
    convert.add_argument("source", metavar="IN")
    convert.add_argument("destination", metavar="OUT")
    convert.add_argument("--cast", choices=["float32"],
                         help="write every floating-point tensor as float32 (complex as "
                              "complex64): needed for dtypes the output format cannot hold, "
                              "such as bfloat16 or float8 into .npz")
    args = parser.parse_args(argv)
    if args.command in ("inspect", "convert"):
        from .serialization import cli
        return cli.main(args.command, args)

    import skipblocks
    skipblocks.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    torch = None
    if not args.no_torch:
        try:
            import torch
            from . import reference
        except ImportError:
            torch = None
    if torch is None:
        if not args.no_torch:
            print("torch is not installed: showing skipblocks' output shapes only")
        _run_without_torch(rng)
        return 0
    torch.manual_seed(args.seed)
    worst = _run_with_torch(rng, torch, reference)
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
