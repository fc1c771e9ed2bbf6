"""Checkpoints as people have them, and the command line, without torch.

* ``state_dict_from`` finds the state_dict under the usual keys and strips
  DataParallel's ``module.`` prefix.
* ``model.load_state_dict(skipblocks.load(path))`` reproduces torch's outputs
  in a subprocess where ``import torch`` fails, for files torch wrote in
  this test (zip and legacy .pth, safetensors via the safetensors package).
* ``python -m skipblocks inspect`` / ``convert`` list and convert files
  (bytes copied exactly; bfloat16 into .npz refused unless ``--cast
  float32``), also with torch blocked.
"""
import io
import json
import os
import subprocess
import sys
import textwrap
from collections import OrderedDict
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
import torch

import skipblocks as sb
from helpers import import_blocker
from tolerances import TOLERANCES
from skipblocks.cli import main as cli_main
from skipblocks import reference
from skipblocks.reference import systems as ref_systems

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(sb.__file__)))

_BLOCK_TORCH = import_blocker("torch", "safetensors")


def _run_without_torch(code, cwd, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = _PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", _BLOCK_TORCH + textwrap.dedent(code)] +
                          list(args), cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc.stdout


# -- state_dict_from -------------------------------------------------------------

def _sd():
    return OrderedDict([("conv.weight", np.ones((2, 1, 3, 3), np.float32)),
                        ("bn.running_mean", np.zeros(2, np.float32))])


@pytest.mark.parametrize("key", ["state_dict", "model_state_dict", "model", "net", "module"])
def test_state_dict_from_finds_the_usual_keys(key):
    sd = _sd()
    checkpoint = {"epoch": 3, "optimizer": {"lr": 0.1}, key: sd}
    found = sb.state_dict_from(checkpoint)
    assert list(found) == list(sd) and all(found[k] is sd[k] for k in sd)


def test_state_dict_from_strips_dataparallel_prefix_and_looks_inside():
    sd = OrderedDict(("module." + k, v) for k, v in _sd().items())
    found = sb.state_dict_from({"model": {"state_dict": sd}})
    assert list(found) == list(_sd())
    assert list(sb.state_dict_from(sd, prefix=None)) == list(sd)
    assert sb.state_dict_from(_sd()).keys() == _sd().keys()


def test_state_dict_from_refuses_what_is_not_a_checkpoint():
    with pytest.raises(ValueError, match=r"no state_dict found.*'epoch'"):
        sb.state_dict_from({"epoch": 3, "weights": [1, 2]})
    with pytest.raises(ValueError, match="no state_dict found"):
        sb.state_dict_from([np.ones(2)])
    with pytest.raises(ValueError, match="two keys 'w'"):
        sb.state_dict_from(OrderedDict([("module.w", np.ones(1)), ("w", np.ones(1))]))


# -- files torch wrote, loaded where torch cannot be imported -------------------------

def _torch_models():
    """name -> (torch module, input shape, code building its skipblocks twin)."""
    torch.manual_seed(0)
    return {
        "resnet": (reference.DOCUMENT_INPUTS["resnet"]["builder"](), (1, 3, 40, 40),
                   "from skipblocks import demos; model = demos.DEMOS['resnet'][0]()"),
        "unet": (ref_systems.SYSTEM_DEMOS["unet"](), (1, 3, 32, 32),
                 "from skipblocks import demos; model = demos.SYSTEM_DEMOS['unet'][0]()"),
        "se-resnet": (ref_systems.SYSTEM_DEMOS["se-resnet"](), (2, 64, 12, 12),
                      "from skipblocks import demos; model = demos.SYSTEM_DEMOS['se-resnet'][0]()"),
    }


def test_torch_written_files_run_without_torch(tmp_path):
    """The issue's test: files torch itself wrote, loaded and run in a
    process where torch cannot be imported, reproduce torch's outputs."""
    from safetensors.torch import save_file
    cases = []
    for name, (model, shape, build) in _torch_models().items():
        # train a step's worth of running statistics into the BatchNorms
        model.train()
        with torch.no_grad():
            model(torch.randn(shape))
        model.eval()
        x = torch.randn(shape)
        with torch.no_grad():
            expected = model(x).numpy()
        np.save(tmp_path / f"{name}-x.npy", x.numpy())
        np.save(tmp_path / f"{name}-y.npy", expected)
        sd = model.state_dict()
        torch.save(sd, tmp_path / f"{name}.pth")
        torch.save(sd, tmp_path / f"{name}-legacy.pth", _use_new_zipfile_serialization=False)
        torch.save({"epoch": 7, "state_dict": OrderedDict(("module." + k, v)
                                                          for k, v in sd.items())},
                   tmp_path / f"{name}-checkpoint.pth")
        save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / f"{name}.safetensors")
        cases.append((name, build))
    tolerance = {"resnet": TOLERANCES["resnet_demo"], "unet": TOLERANCES["unet"],
                 "se-resnet": TOLERANCES["se_residual_block"]}
    out = _run_without_torch(f"""
        import numpy as np
        import skipblocks as sb
        for name, build in {cases!r}:
            x, expected = np.load(name + "-x.npy"), np.load(name + "-y.npy")
            for file, mmap in [(name + ".pth", False), (name + ".pth", True),
                               (name + "-legacy.pth", False),
                               (name + "-checkpoint.pth", False),
                               (name + ".safetensors", True)]:
                exec(build)
                loaded = sb.load(file, mmap=mmap)
                model.load_state_dict(sb.state_dict_from(loaded))
                model.eval()
                err = np.abs(model(x) - expected).max() / max(1.0, np.abs(expected).max())
                assert err <= {tolerance!r}[name], (file, err)
                print(file, mmap, "ok")
        assert "torch" not in sys.modules
    """, tmp_path)
    assert out.count("ok") == 5 * len(cases)


# -- the command line ------------------------------------------------------------------

def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = cli_main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_inspect_lists_keys_shapes_dtypes_and_totals(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    checkpoint = {"epoch": 3, "state_dict": model.state_dict(), "mask_values": [0, 1],
                  "ema": torch.ones(5, dtype=torch.bfloat16)}
    torch.save(checkpoint, tmp_path / "ck.pth")
    status, out, _ = _cli("inspect", str(tmp_path / "ck.pth"))
    assert status == 0
    assert "torch zip format" in out
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert "(4, 3, 3, 3)" in lines["state_dict.0.weight"] and "float32" in lines[
        "state_dict.0.weight"]
    assert "bfloat16" in lines["ema"] and "= 3" in lines["epoch"]
    assert "[0, 1]" in lines["mask_values"]
    assert "int64" in lines["state_dict.1.num_batches_tracked"]
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    total = params + buffers + 5
    # parameters and buffers are the state_dict's; the stray "ema" tensor is another
    assert (f"8 tensors, {total:,} elements (the state_dict's {params:,} in parameters, "
            f"{buffers:,} in buffers named running_mean/running_var/num_batches_tracked; 5 in "
            f"other tensors)") in out
    nbytes = sum(t.numel() * t.element_size() for t in model.state_dict().values()) + 10
    assert f"{nbytes:,} bytes of tensor data" in out


def test_inspect_shows_safetensors_metadata_and_refuses_bad_files(tmp_path):
    from safetensors.numpy import save_file
    save_file({"w": np.ones(3, np.float16)}, str(tmp_path / "w.safetensors"),
              metadata={"format": "pt"})
    status, out, _ = _cli("inspect", str(tmp_path / "w.safetensors"))
    assert status == 0 and "metadata: format = pt" in out and "float16" in out
    (tmp_path / "junk.pt").write_bytes(b"not a weight file at all")
    status, _, err = _cli("inspect", str(tmp_path / "junk.pt"))
    assert status == 1 and err.startswith("error: ") and "junk.pt" in err


def _bits(value):
    return np.ascontiguousarray(value).view(np.uint8)


@pytest.mark.parametrize("source_ext", [".pth", "-legacy.pth", ".safetensors", ".npz"])
@pytest.mark.parametrize("target_ext", [".pt", ".safetensors", ".npz"])
def test_convert_copies_bytes_exactly(tmp_path, source_ext, target_ext):
    g = torch.Generator().manual_seed(1)
    sd = OrderedDict([("w16", torch.randn(3, 4, generator=g).half()),
                      ("w32", torch.randn(2, 5, generator=g)),
                      ("w64", torch.randn(3, generator=g).double()),
                      ("steps", torch.tensor(12345678901)), ("mask", torch.tensor([True, False]))])
    source = tmp_path / f"in{source_ext}"
    if source_ext == ".safetensors":
        from safetensors.torch import save_file
        save_file(sd, str(source))
    elif source_ext == ".npz":
        np.savez(source, **{k: v.numpy() for k, v in sd.items()})
    else:
        torch.save(sd, source, _use_new_zipfile_serialization="legacy" not in source_ext)
    target = tmp_path / f"out{target_ext}"
    status, out, err = _cli("convert", str(source), str(target))
    assert status == 0, err
    assert f"wrote {target}" in out
    loaded = sb.load(target)
    assert set(loaded) == set(sd)
    for key, tensor in sd.items():
        assert loaded[key].dtype == tensor.numpy().dtype and loaded[key].shape == tensor.shape
        assert np.array_equal(_bits(loaded[key]), _bits(tensor.numpy())), key


def test_convert_bfloat16_needs_cast_for_npz(tmp_path):
    from safetensors.torch import load_file
    g = torch.Generator().manual_seed(2)
    bf = torch.randn(4, 3, generator=g).bfloat16()
    torch.save({"bf": bf, "f": torch.ones(2)}, tmp_path / "bf.pt")
    # .pt and .safetensors hold bfloat16: the bits are copied
    assert _cli("convert", str(tmp_path / "bf.pt"), str(tmp_path / "bf.safetensors"))[0] == 0
    back = load_file(str(tmp_path / "bf.safetensors"))
    assert back["bf"].dtype == torch.bfloat16 and torch.equal(back["bf"].view(torch.int16),
                                                              bf.view(torch.int16))
    assert _cli("convert", str(tmp_path / "bf.safetensors"), str(tmp_path / "bf2.pt"))[0] == 0
    again = torch.load(tmp_path / "bf2.pt", weights_only=True)
    assert again["bf"].dtype == torch.bfloat16 and torch.equal(again["bf"], bf)
    # .npz cannot: refused, nothing written, unless --cast float32
    status, _, err = _cli("convert", str(tmp_path / "bf.pt"), str(tmp_path / "bf.npz"))
    assert status == 1 and "bfloat16" in err and "--cast float32" in err
    assert not (tmp_path / "bf.npz").exists()
    assert _cli("convert", str(tmp_path / "bf.pt"), str(tmp_path / "bf.npz"),
                "--cast", "float32")[0] == 0
    with np.load(tmp_path / "bf.npz", allow_pickle=False) as npz:
        assert npz["bf"].dtype == np.float32 and np.array_equal(npz["bf"], bf.float().numpy())
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]


def test_convert_checkpoint_keeps_its_state_dict(tmp_path):
    sd = OrderedDict([("a", torch.ones(2)), ("b", torch.zeros(3, dtype=torch.int32))])
    torch.save({"epoch": 1, "model_state_dict": sd, "note": "x"}, tmp_path / "ck.pt")
    status, _, err = _cli("convert", str(tmp_path / "ck.pt"), str(tmp_path / "ck.safetensors"))
    assert status == 0 and "2 other entries" in err
    assert list(sb.load(tmp_path / "ck.safetensors")) == ["a", "b"]
    # to .pt the whole checkpoint is kept
    assert _cli("convert", str(tmp_path / "ck.pt"), str(tmp_path / "ck2.pt"))[0] == 0
    assert torch.load(tmp_path / "ck2.pt", weights_only=True)["epoch"] == 1
    status, _, err = _cli("convert", str(tmp_path / "ck.pt"), str(tmp_path / "ck.weird"))
    assert status == 1 and ".safetensors" in err


def test_command_line_without_torch(tmp_path):
    sd = OrderedDict([("w", torch.arange(6.0).reshape(2, 3)),
                      ("h", torch.ones(2, dtype=torch.bfloat16))])
    torch.save(sd, tmp_path / "w.pth")
    out = _run_without_torch("""
        import runpy
        sys.argv = ["skipblocks"] + sys.argv[1:]
        try:
            runpy.run_module("skipblocks", run_name="__main__")
        except SystemExit as exc:
            assert not exc.code, exc.code
        assert "torch" not in sys.modules
    """, tmp_path, "inspect", "w.pth")
    assert "(2, 3)" in out and "bfloat16" in out
    _run_without_torch("""
        import runpy
        sys.argv = ["skipblocks", "convert", "w.pth", "w.safetensors"]
        try:
            runpy.run_module("skipblocks", run_name="__main__")
        except SystemExit as exc:
            assert not exc.code, exc.code
    """, tmp_path)
    from safetensors.torch import load_file
    back = load_file(str(tmp_path / "w.safetensors"))
    assert torch.equal(back["w"], sd["w"]) and torch.equal(back["h"], sd["h"])
    header_length = int.from_bytes((tmp_path / "w.safetensors").read_bytes()[:8], "little")
    header = json.loads((tmp_path / "w.safetensors").read_bytes()[8:8 + header_length])
    assert header["h"]["dtype"] == "BF16"


def test_inspect_lists_a_shared_container_once_and_plain_tuples_by_value(tmp_path):
    # torch's pickler memoises: the equal tuples and the shared dict are one object each
    mean = (0.5, 0.5, 0.5)
    shared = {"w": torch.ones(2)}
    torch.save({"config": {"mean": mean, "std": mean}, "a": shared, "b": shared},
               tmp_path / "c.pt")
    status, out, _ = _cli("inspect", str(tmp_path / "c.pt"))
    assert status == 0
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert lines["config.std"].endswith("= (0.5, 0.5, 0.5)")
    assert lines["b"].endswith("= <the same object as a>")
    assert "1 tensors" in out or "1 tensor" in out


def test_state_dict_from_accepts_extra_state(tmp_path):
    sd = OrderedDict([("weight", np.ones((2, 2), np.float32)),
                      ("_extra_state", {"calibration": 0.5})])
    assert sb.state_dict_from({"state_dict": sd}) == sd


def test_save_writes_one_storage_for_one_array_under_two_keys(tmp_path):
    w = np.arange(1000, dtype=np.float32)
    sb.save({"embedding": w, "head": w}, tmp_path / "tied.pth")
    theirs = torch.load(tmp_path / "tied.pth", weights_only=True)
    assert (theirs["embedding"].untyped_storage().data_ptr()
            == theirs["head"].untyped_storage().data_ptr())
    assert os.path.getsize(tmp_path / "tied.pth") < 2 * w.nbytes


@pytest.mark.parametrize("name", ["C:\\models\\net.pth", "модель.pth", "a..b.pth"])
def test_save_names_the_archive_so_that_it_reads_back(tmp_path, name):
    path = tmp_path / name
    sb.save({"w": np.ones(2, np.float32)}, path)
    assert np.array_equal(sb.load(path)["w"], np.ones(2, np.float32))
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(2))


def test_save_into_a_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sb.save({"w": np.ones(2)}, tmp_path / "missing" / "x.pt")
