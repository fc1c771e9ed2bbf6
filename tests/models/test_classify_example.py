"""examples/classify.py: the README's ResNet-18 example gives torch's top-5
for the same weights file and image, and runs with random weights."""
import importlib.util
import os

import numpy as np
import torch
import torch.nn.functional as F

from skipblocks.reference import networks as ref

from helpers import randomize_network_

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "examples", "classify.py")


def _example():
    spec = importlib.util.spec_from_file_location("classify_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_top5_matches_torch_for_a_weights_file_and_an_image(tmp_path, capsys):
    tm = randomize_network_(ref.resnet18()).eval()
    weights = tmp_path / "resnet18.pth"
    torch.save(tm.state_dict(), weights)
    image = np.random.default_rng(1).integers(0, 256, size=(180, 240, 3), dtype=np.uint8)
    np.save(tmp_path / "image.npy", image)

    indices = _example().main(["--weights", str(weights), "--image",
                               str(tmp_path / "image.npy")])

    # torchvision's ImageNet evaluation transform (Resize(256) without antialias,
    # CenterCrop(224)), in torch: 180 x 240 -> 256 x 341 -> the centre 224 x 224
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(256, 341), mode="bilinear", align_corners=False)
    x = x[:, :, 16:240, 58:282]
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    with torch.no_grad():
        logits = tm((x - mean) / std)[0]
    assert list(indices) == torch.topk(logits, 5).indices.tolist()
    printed = capsys.readouterr().out
    assert "top-5 class indices: " + " ".join(str(int(i)) for i in indices) in printed


def test_runs_with_random_weights(capsys):
    indices = _example().main([])
    assert len(set(int(i) for i in indices)) == 5 and all(0 <= i < 1000 for i in indices)
    assert "random (the classes mean nothing)" in capsys.readouterr().out
