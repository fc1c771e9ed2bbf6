"""Classify one image with ResNet-18, without torch: the top-5 class indices.

    python examples/classify.py                                   # random image, random weights
    python examples/classify.py --weights resnet18-f37072fd.pth   # torchvision's published file
    python examples/classify.py --weights w.pth --image photo.npy # an (H, W, 3) uint8 array

Nothing is downloaded. With torchvision's published weights (the file torchvision keeps under
~/.cache/torch/hub/checkpoints/ after its first download), the indices are ImageNet classes;
with random weights they mean nothing, but the pipeline is the same. The image is prepared as
torchvision evaluates its ImageNet weights (shorter side to 256, centre 224 x 224 crop, ImageNet
normalisation), resized with skipblocks' own bilinear interpolation.
To read a JPEG or PNG into an array, use any image library, e.g. ``np.asarray(PIL.Image.open(
path).convert("RGB"))``, and save it with ``np.save``.
"""
import argparse

import numpy as np

import skipblocks as sb
from skipblocks import models

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)


def preprocess(image, resize=256, crop=224):
    """An (H, W, 3) uint8 image -> the (1, 3, crop, crop) float32 batch
    torchvision's ImageNet weights are evaluated on: scaled to [0, 1], the
    shorter side resized to ``resize`` (bilinear; torchvision's Resize also
    antialiases when it shrinks, which skipblocks' interpolate does not),
    the centre ``crop`` x ``crop`` cut out, and normalised with ImageNet's
    mean and standard deviation."""
    x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32) / 255
    h, w = x.shape[2:]
    size = (resize, int(resize * w / h)) if h <= w else (int(resize * h / w), resize)
    x = sb.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    top, left = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    x = x[:, :, top:top + crop, left:left + crop]
    return (x - IMAGENET_MEAN) / IMAGENET_STD


def top5(model, image):
    """The five most likely class indices and their softmax probabilities."""
    logits = model(preprocess(image))[0].astype(np.float64)
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    best = np.argsort(-probabilities, kind="stable")[:5]
    return best, probabilities[best]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="a .pth, .safetensors or .npz file of resnet18 "
                                          "(default: random weights)")
    parser.add_argument("--image", help="an .npy file of an (H, W, 3) uint8 image "
                                        "(default: a random image)")
    args = parser.parse_args(argv)

    sb.manual_seed(0)
    model = models.resnet18(weights=args.weights).eval()
    if args.image:
        image = np.load(args.image, allow_pickle=False)
    else:
        image = np.random.default_rng(0).integers(0, 256, size=(256, 320, 3), dtype=np.uint8)
    indices, probabilities = top5(model, image)
    print("weights:", args.weights or "random (the classes mean nothing)")
    print("top-5 class indices:", " ".join(str(int(i)) for i in indices))
    print("probabilities:      ", " ".join(f"{p:.4f}" for p in probabilities))
    return indices


if __name__ == "__main__":
    main()
