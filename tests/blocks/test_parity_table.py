"""skipblocks.parity.compare: the per-layer parity table on the document's
resnet demo, and that a deliberately perturbed skipblocks weight is reported
in exactly the rows it affects (and nowhere upstream of it).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from skipblocks import demos, parity
from skipblocks import reference as ref

from helpers import as_dtype
from tolerances import F64_BLOCK_BOUND, ISSUE_BLOCK_BOUND

# the issues' ceilings, per dtype: 1e-4 in float32, 1e-12 in float64 (against
# torch's .double() modules); the tables are compared and flagged at these
TOLS = {"float32": ISSUE_BLOCK_BOUND, "float64": F64_BLOCK_BOUND}
BLOCKS = ("2", "3", "4")


def _pair(name, dtype):
    """The document's demo ``name`` on both sides, in ``dtype``, and its input."""
    theirs, ours = as_dtype(getattr(ref, name + "_demo")(), getattr(demos, name + "_demo")(),
                            dtype)
    x = ref.document_input(name)
    return theirs, ours, x.double() if dtype == "float64" else x


def _resnet_pair(dtype="float32"):
    return _pair("resnet", dtype)


def _by_name(table, mode):
    return {r["name"]: r for r in table.rows if r["mode"] == mode}


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_resnet_table_has_every_layer_call_and_is_within_bound(mode, dtype):
    tol = TOLS[dtype]
    theirs, ours, x = _resnet_pair(dtype)
    table = parity.compare(theirs, ours, x, mode=mode, tol=tol)
    rows = _by_name(table, mode)
    # The shared `bn` runs after both convolutions: one row per call.
    for block in BLOCKS:
        for layer in ("conv1", "bn#1", "conv2", "bn#2"):
            row = rows[f"{block}.{layer}"]
            assert row["parity_error"] is not None, row
        assert rows[block]["type"] == "ResidualBlock"
        assert f"{block}.bn" not in rows
    for name in ("0", "1", "4.downsample.0", "4.downsample.1", "4.downsample", ""):
        assert rows[name]["parity_error"] is not None, name
    assert rows["0"]["shape"] == (1, 64, 50, 50)
    assert rows[""]["shape"] == (1, 128, 13, 13)
    assert table.worst < tol, str(table)
    assert table.over() == []
    stats_rows = [r for r in table.rows if r["running_mean_error"] is not None]
    if mode == "train":
        # Every BatchNorm call reports its running statistics after that call.
        assert {r["name"] for r in stats_rows} == {
            f"{b}.bn#{k}" for b in BLOCKS for k in (1, 2)} | {"4.downsample.1"}
    else:
        assert stats_rows == []


def test_both_modes_and_renderings(dtype):
    theirs, ours, x = _resnet_pair(dtype)
    table = parity.compare(theirs, ours, x, mode="both")
    assert [m for m in ("train", "eval") if any(r["mode"] == m for r in table.rows)] == \
        ["train", "eval"]
    assert len(_by_name(table, "train")) == len(_by_name(table, "eval"))
    text = str(table)
    assert "2.bn#2" in text and "worst parity error" in text
    # Aligned: each row's layer name starts under the "layer" header.
    lines = text.splitlines()
    column = lines[0].index("layer")
    for line, row in zip(lines[2:], table.rows):
        assert line[column:].startswith(row["name"] or "(model)"), line
    assert "<table>" in table._repr_html_() and "2.bn#1" in table._repr_html_()
    md = table.to_markdown().splitlines()
    assert md[0].startswith("| mode | layer |") and md[1].startswith("|---|")
    assert len(md[0].split(" | ")) == len(md[2].split(" | "))


def _perturb(module, attr, delta=0.5):
    setattr(module, attr, np.asarray(getattr(module, attr)) + delta)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_perturbed_downsample_weight_shows_in_exactly_its_rows(mode, dtype):
    """The downsample branch feeds only the residual addition: its rows, the
    block and the model must differ; the block's convolutions and BatchNorm
    calls, and everything before block 4, must not."""
    tol = TOLS[dtype]
    theirs, ours, x = _resnet_pair(dtype)
    ours.load_state_dict(theirs.state_dict())
    _perturb(ours[4].downsample[0], "weight")
    table = parity.compare(theirs, ours, x, mode=mode, copy_weights=False)
    flagged = {r["name"] for r in table.over(tol)}
    assert flagged == {"4.downsample.0", "4.downsample.1", "4.downsample", "4", ""}, str(table)
    assert table.worst_row["name"] in flagged
    assert table.worst > 1e-2


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_perturbed_conv_weight_is_the_first_flagged_row(mode, dtype):
    tol = TOLS[dtype]
    theirs, ours, x = _resnet_pair(dtype)
    ours.load_state_dict(theirs.state_dict())
    _perturb(ours[3].conv2, "weight")
    table = parity.compare(theirs, ours, x, mode=mode, copy_weights=False)
    names = [r["name"] for r in table.rows]
    first = names.index("3.conv2")
    assert all(r["parity_error"] < tol for r in table.rows[:first]), str(table)
    assert table.rows[first]["parity_error"] > 1e-2, str(table)
    # Downstream of conv2 in the same block: the second bn call and the block.
    for name in ("3.bn#2", "3"):
        assert table.rows[names.index(name)]["parity_error"] > tol, name


def test_perturbed_running_mean_shows_in_eval_only_at_that_bn(dtype):
    tol = TOLS[dtype]
    theirs, ours, x = _resnet_pair(dtype)
    ours.load_state_dict(theirs.state_dict())
    _perturb(ours[4].downsample[1], "running_mean", delta=3.0)
    table = parity.compare(theirs, ours, x, mode="eval", copy_weights=False)
    assert [r["name"] for r in table.over(tol)][0] == "4.downsample.1"


def test_copy_weights_loads_torch_weights(dtype):
    theirs, ours, x = _resnet_pair(dtype)  # independently initialised: they differ
    assert parity.compare(theirs, ours, x, copy_weights=False).worst > 1e-2
    assert parity.compare(theirs, ours, x).worst < TOLS[dtype]
    for key, value in theirs.state_dict().items():
        assert ours.state_dict()[key].dtype == value.numpy().dtype, key
        assert np.array_equal(ours.state_dict()[key], value.numpy()), key


def test_modules_are_left_as_found(dtype):
    theirs, ours, x = _resnet_pair(dtype)
    theirs.eval()
    ours.load_state_dict(theirs.state_dict())
    ours[2].train()  # mixed flags must survive too
    before_t = {k: v.clone() for k, v in theirs.state_dict().items()}
    before_o = {k: np.array(v, copy=True) for k, v in ours.state_dict().items()}
    flags_o = [(n, m.training) for n, m in ours.named_modules()]
    parity.compare(theirs, ours, x, mode="both")
    assert not theirs.training
    for key, value in theirs.state_dict().items():
        assert torch.equal(value, before_t[key]), key
    assert not any(m._forward_hooks for m in theirs.modules())
    for key, value in ours.state_dict().items():
        assert value.dtype == before_o[key].dtype, key
        assert np.array_equal(value, before_o[key]), key
    assert [(n, m.training) for n, m in ours.named_modules()] == flags_o
    assert not any("forward" in m.__dict__ or "_forward" in m.__dict__
                   for m in ours.modules())


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fused_path_block_rows_within_bound(mode, dtype):
    """fused=True checks the fast path: layers folded into others are noted
    (never silently dropped), block and model outputs are still compared."""
    theirs, ours, x = _resnet_pair(dtype)
    table = parity.compare(theirs, ours, x, mode=mode, fused=True, tol=TOLS[dtype])
    rows = _by_name(table, mode)
    assert table.worst < TOLS[dtype], str(table)
    for name in BLOCKS + ("",):
        assert rows[name]["parity_error"] is not None, name
    for name, row in rows.items():
        if row["parity_error"] is None:
            assert row["note"], name


def test_densenet_rows_fused_layers_are_noted(dtype):
    theirs, ours, x = _pair("densenet", dtype)
    table = parity.compare(theirs, ours, x, mode="train", tol=TOLS[dtype])
    rows = _by_name(table, "train")
    assert table.worst < TOLS[dtype], str(table)
    assert rows["3.block.dense0"]["parity_error"] is not None
    assert rows["3.block.dense0.bn1"]["parity_error"] is not None
    # Rows a side lacks are reported, never silently dropped.
    for name, row in rows.items():
        if row["parity_error"] is None:
            assert row["note"], name


def test_se_inplace_relu_does_not_corrupt_captured_outputs(dtype):
    """fc.1 is ReLU(inplace=True) on both sides: fc.0's recorded output must
    be the pre-ReLU Linear output (it has negative entries)."""
    theirs, ours, x = _pair("se", dtype)
    table = parity.compare(theirs, ours, x, mode="eval", tol=TOLS[dtype])
    assert table.worst < TOLS[dtype], str(table)
    assert _by_name(table, "eval")["fc.0"]["parity_error"] < TOLS[dtype]


def test_bad_mode():
    theirs, ours, x = _resnet_pair()
    with pytest.raises(ValueError, match="mode"):
        parity.compare(theirs, ours, x, mode="inference")


def test_import_without_torch_and_clear_error():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "import skipblocks.parity as p\n"
        "from skipblocks import demos\n"
        "try:\n"
        "    p.compare(None, demos.se_demo(), np.zeros((1, 512, 7, 7), np.float32))\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/blocks/ -> repo
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ImportError:" in out.stdout and "needs torch" in out.stdout


# ---------------------------------------------------------------------------
# assert_parity: compare, then raise with the table
# ---------------------------------------------------------------------------

def test_assert_parity_returns_the_table_when_every_row_passes():
    theirs, ours, x = _resnet_pair()
    table = parity.assert_parity(theirs, ours, x, mode="both")
    assert isinstance(table, parity.ParityTable)
    assert {r["mode"] for r in table.rows} == {"train", "eval"}
    assert table.worst <= ISSUE_BLOCK_BOUND and table.tol == ISSUE_BLOCK_BOUND


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_assert_parity_raises_naming_the_first_failing_layer_with_the_table(mode):
    theirs, ours, x = _resnet_pair()
    ours[3].bn.eps = 0.1   # not in the state_dict: copying torch's weights keeps it
    with pytest.raises(AssertionError) as info:
        parity.assert_parity(theirs, ours, x, mode=mode)
    message = str(info.value)
    assert message.startswith("parity: ")
    assert "the first is 3.bn#1 (BatchNorm2d, %s)" % mode in message
    table = parity.compare(theirs, ours, x, mode=mode)
    assert str(table) in message            # the whole table, failing rows flagged
    assert "\n! " in message


def test_assert_parity_tol():
    theirs, ours, x = _resnet_pair()
    with pytest.raises(AssertionError, match="above 1e-12"):
        parity.assert_parity(theirs, ours, x, tol=1e-12)   # float32 rounding is above it
    ours[3].bn.eps = 0.1
    parity.assert_parity(theirs, ours, x, tol=10.0)


def test_assert_parity_fails_on_nan():
    theirs, ours, x = _resnet_pair()
    ours[2].conv1.register_forward_hook(lambda m, args, out: out * np.nan)
    with pytest.raises(AssertionError, match="inf"):
        parity.assert_parity(theirs, ours, x)
