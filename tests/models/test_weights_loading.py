"""The builders' ``weights=``: files and state_dicts written by the torch
references in the shapes torchvision's and timm's published files have, and
what those libraries do when they load them -- DenseNet's pre-0.4 keys,
GoogLeNet's aux heads and transform_input, timm's safetensors files,
num_classes taken from the file -- checked by parity with the torch model
loaded the torchvision way; plus the errors.
"""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import skipblocks as sb
from skipblocks import models
from skipblocks.reference import networks as ref

from helpers import (assert_parity, import_blocker, randn, randomize_network_, to_torch,
                     without_dropout)


def _eval_parity(sm, tm, op, rng, what, shape=(2, 3, 64, 64)):
    sm.eval()
    tm.eval()
    x = randn(rng, *shape)
    with torch.no_grad():
        expected = tm(to_torch(x))
    assert_parity(sm(x), expected, op, what=what)


def test_resnet_from_a_pth_file_a_state_dict_and_a_checkpoint(tmp_path, rng):
    tm = randomize_network_(ref.resnet18())
    path = tmp_path / "resnet18-weights.pth"
    torch.save(tm.state_dict(), path)
    _eval_parity(models.resnet18(weights=path), tm, "resnet18", rng, ".pth path")
    _eval_parity(models.resnet18(weights=str(path)), tm, "resnet18", rng, ".pth str")
    _eval_parity(models.resnet18(weights=tm.state_dict()), tm, "resnet18", rng,
                 "state_dict of torch tensors")
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in
                                           tm.state_dict().items()}}, checkpoint)
    _eval_parity(models.resnet18(weights=checkpoint), tm, "resnet18", rng,
                 "DataParallel checkpoint")


def test_num_classes_comes_from_the_file(tmp_path, rng):
    tm = randomize_network_(ref.resnet34(num_classes=10))
    path = tmp_path / "ten.pth"
    torch.save(tm.state_dict(), path)
    net = models.resnet34(weights=path)
    assert net.fc.out_features == 10
    _eval_parity(net, tm, "resnet34", rng, "10 classes")
    assert models.resnet34(weights=path, num_classes=10).fc.out_features == 10
    # torchvision's _ovewrite_named_param wording
    with pytest.raises(ValueError) as theirs:
        ref._overwrite_named_param({"num_classes": 1000}, "num_classes", 10)
    with pytest.raises(ValueError) as ours:
        models.resnet34(weights=path, num_classes=1000)
    assert str(ours.value) == "resnet34: " + str(theirs.value)


def test_densenet_file_with_pre_0_4_keys(tmp_path, rng):
    """torchvision's published DenseNet files name a dense layer's children
    norm.1, conv.1, ... and lack num_batches_tracked; torchvision renames
    the keys with a regex before loading, and so do the builders."""
    tm = randomize_network_(ref.densenet121())
    old = ref.old_densenet_keys(tm.state_dict())
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    assert "features.denseblock1.denselayer1.norm1.weight" not in old
    path = tmp_path / "densenet121-a639ec97.pth"
    torch.save(old, path)
    # the torchvision way, on the torch side
    loaded = ref.densenet121()
    ref.load_densenet_state_dict(loaded, torch.load(path, weights_only=True))
    net = models.densenet121(weights=path)
    assert list(net.state_dict()) == list(loaded.state_dict())
    _eval_parity(net, loaded, "densenet121", rng, "pre-0.4 keys")
    # the same rename for a state_dict given directly
    _eval_parity(models.densenet121(weights=old), loaded, "densenet121", rng,
                 "pre-0.4 keys, state_dict")


def test_densenet_other_widths_load_their_old_keys(rng):
    tm = randomize_network_(ref.densenet161())
    net = models.densenet161(weights=ref.old_densenet_keys(tm.state_dict()))
    _eval_parity(net, tm, "densenet161", rng, "densenet161 pre-0.4 keys")


def _googlenet_file(tmp_path):
    """A GoogLeNet state_dict as torchvision publishes it: aux1/aux2 keys
    included (its builder builds the heads, loads, then drops them)."""
    tm = randomize_network_(ref.googlenet(init_weights=True))
    state_dict = tm.state_dict()
    assert any(k.startswith("aux1.") for k in state_dict)
    path = tmp_path / "googlenet-1378be20.pth"
    torch.save(state_dict, path)
    return path, state_dict


def test_googlenet_file_with_aux_heads(tmp_path, rng):
    path, state_dict = _googlenet_file(tmp_path)
    tm = ref.googlenet_pretrained_like(state_dict)
    net = models.googlenet(weights=path)
    assert net.transform_input and not net.aux_logits
    assert net.aux1 is None and net.aux2 is None
    assert list(net.state_dict()) == list(tm.state_dict())
    assert repr(net) == repr(tm)
    _eval_parity(net, tm, "googlenet", rng, "pretrained-style googlenet")
    net.train()
    tm.train()
    without_dropout(net, sb.Dropout)
    without_dropout(tm, torch.nn.Dropout)
    x = randn(rng, 2, 3, 64, 64)
    with torch.no_grad():
        expected = tm(to_torch(x))
    out = net(x)
    assert isinstance(out, np.ndarray)          # no aux heads: the logits alone
    assert_parity(out, expected, "googlenet", what="train mode without aux heads")

    # transform_input=False given: kept
    assert not models.googlenet(weights=path, transform_input=False).transform_input


def test_googlenet_file_kept_aux_heads_warn_and_run(tmp_path, rng):
    path, state_dict = _googlenet_file(tmp_path)
    with pytest.warns(UserWarning, match="auxiliary heads in the pretrained googlenet"):
        tm = ref.googlenet_pretrained_like(state_dict, aux_logits=True)
    with pytest.warns(UserWarning, match="auxiliary heads in the pretrained googlenet"):
        net = models.googlenet(weights=path, aux_logits=True)
    assert net.aux_logits and net.aux1 is not None
    assert list(net.state_dict()) == list(tm.state_dict())
    without_dropout(net, sb.Dropout)
    without_dropout(tm, torch.nn.Dropout)
    net.train()
    tm.train()
    x = randn(rng, 2, 3, 64, 64)
    with torch.no_grad():
        expected = tm(to_torch(x))
    out = net(x)
    assert type(out) is models.GoogLeNetOutputs and out._fields == expected._fields
    for field in out._fields:
        assert_parity(getattr(out, field), getattr(expected, field), "googlenet",
                      what="GoogLeNetOutputs." + field)


def test_googlenet_file_without_aux_keys_loads(tmp_path, rng):
    """A model saved after the aux heads were dropped (344 keys) loads into
    a model built without them (torchvision's builder would ask for the aux
    keys); asking for aux heads then names the missing keys."""
    path, state_dict = _googlenet_file(tmp_path)
    tm = ref.googlenet_pretrained_like(state_dict)
    saved = tmp_path / "fine-tuned.safetensors"
    sb.save(models.googlenet(weights=path).state_dict(), saved)
    _eval_parity(models.googlenet(weights=saved), tm, "googlenet", rng, "no aux keys")
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "aux1.conv'), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models.googlenet(weights=saved, aux_logits=True)


@pytest.mark.parametrize("name", ["se_resnet50", "se_resnet101"])
def test_timm_safetensors_file(name, tmp_path, rng):
    """timm publishes SE-ResNet weights as model.safetensors with its keys."""
    from safetensors.torch import save_file
    tm = randomize_network_(ref.NETWORKS[name.replace("se_resnet", "seresnet")]())
    path = tmp_path / "model.safetensors"
    save_file(tm.state_dict(), str(path))
    _eval_parity(getattr(models, name)(weights=path), tm, name, rng, "timm safetensors")


def test_weights_errors(tmp_path):
    with pytest.raises(ValueError, match="resnet50: weights='IMAGENET1K_V2' names "
                                         "torchvision's download; skipblocks .* never"):
        models.resnet50(weights="IMAGENET1K_V2")
    with pytest.raises(ValueError, match="never downloads"):
        models.googlenet(weights="DEFAULT")
    with pytest.raises(TypeError, match="densenet121: weights must be a path .* got int"):
        models.densenet121(weights=1)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        models.resnet18(weights=tmp_path / "missing.pth")
    (tmp_path / "not-weights.pth").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(sb.WeightsFileError, match="not-weights.pth"):
        models.resnet18(weights=tmp_path / "not-weights.pth")
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "fc.bias"'):
        state_dict = models.resnet18().state_dict()
        del state_dict["fc.bias"]
        models.resnet18(weights=state_dict)
    with pytest.raises(ValueError, match="no state_dict found"):
        models.resnet18(weights={"epoch": 1})


def test_loading_needs_no_torch(tmp_path):
    """A torchvision-style .pth file loads and runs in a process where torch
    cannot be imported."""
    tm = randomize_network_(ref.resnet18(num_classes=3)).eval()
    path = tmp_path / "resnet18.pth"
    torch.save(tm.state_dict(), path)
    x = np.random.default_rng(0).standard_normal((1, 3, 48, 48)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    with torch.no_grad():
        np.save(tmp_path / "expected.npy", tm(torch.from_numpy(x)).numpy())
    script = import_blocker("torch", "safetensors") + textwrap.dedent(f"""
        import numpy as np
        import skipblocks.models as models
        net = models.resnet18(weights={str(path)!r}).eval()
        out = net(np.load({str(tmp_path / "x.npy")!r}))
        np.save({str(tmp_path / "out.npy")!r}, out)
        assert "torch" not in sys.modules
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    assert_parity(np.load(tmp_path / "out.npy"), np.load(tmp_path / "expected.npy"), "resnet18",
                  what="torch-free process")


def test_pretrained_true_points_to_weights():
    with pytest.raises(ValueError, match="resnet18: pretrained=True downloads .* weights="):
        models.resnet18(pretrained=True)
    with pytest.raises(ValueError, match="googlenet: pretrained=True"):
        models.googlenet(pretrained=True)
    assert models.densenet121(pretrained=False, progress=False).classifier.out_features == 1000
