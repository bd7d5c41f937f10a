"""Bad checkpoint files and failed downloads end in one CheckpointError line that says what the file is (or
where the download went wrong) and what to pass instead; CLIP-loss weights are refused by a SigLIP model."""
import random
import socket
import time

import pytest

torch = pytest.importorskip("torch")

from clipstudy.cli import main  # noqa: E402
from clipstudy.errors import CheckpointError, ConfigError  # noqa: E402
from clipstudy.models import load_model, save_weights  # noqa: E402

SIGLIP, CLIP_TWIN = "clipstudy-rn-tiny-sigmoid", "clipstudy-rn-tiny"  # the same tensors but the logit bias


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Small checkpoints as torch files and as safetensors with the project's metadata: ``micro``, ``siglip``
    (a SigLIP architecture) and ``rn``, the same tensors without ``logit_bias`` (what CLIP-loss training of
    the same ResNet gives)."""
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("ckpts")
    siglip = load_model(SIGLIP, "random", seed=0).model.state_dict()
    states = {"micro": ("clipstudy-micro", load_model("clipstudy-micro", "random", seed=0).model.state_dict()),
              "siglip": (SIGLIP, siglip),
              "rn": (CLIP_TWIN, {k: v for k, v in siglip.items() if k != "logit_bias"})}
    for stem, (arch, state) in states.items():
        torch.save(state, d / f"{stem}.pt")
        save_file({k: v.contiguous() for k, v in state.items()}, str(d / f"{stem}.safetensors"),
                  metadata={"arch": arch})
    return d


def one_error_line(capsys, *args):
    """Run the CLI in-process: an escaping exception fails the test, so one printed line means no traceback."""
    code = main(list(args))
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert code == 2 and out.out == "" and lines and lines[-1].startswith("clipstudy: error:"), out.err
    return lines


# --- (a) CLIP-loss weights in a SigLIP architecture ---------------------------------------------------------

@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_clip_weights_refused_by_siglip_architecture(ckpts, suffix):
    # open_clip would load them with logit_bias = 0 and every sigmoid score off by the whole bias
    with pytest.raises(CheckpointError) as err:
        load_model(SIGLIP, str(ckpts / f"rn{suffix}"))
    msg = str(err.value)
    assert "has no logit_bias" in msg and "CLIP's softmax loss, not SigLIP" in msg and "\n" not in msg
    assert f"load it with the model name {CLIP_TWIN}" in msg


def test_siglip_checkpoints_still_load(ckpts):
    want = torch.load(ckpts / "siglip.pt")
    model = load_model(SIGLIP, str(ckpts / "siglip.pt")).model
    torch.testing.assert_close(model.state_dict(), want)
    assert model.logit_bias.item() == -10.0
    path = ckpts / "siglip_fp16.safetensors"  # as pretraining ships the zoo's SigLIP members
    save_weights(model, path, metadata={"arch": SIGLIP, "preset": "zoo-siglip"})
    assert load_model(SIGLIP, str(path)).model.logit_bias.item() == -10.0
    assert load_model(CLIP_TWIN, str(ckpts / "rn.pt")).model.logit_bias is None


def test_siglip_weights_named_in_clip_architecture(ckpts):
    with pytest.raises(CheckpointError, match=f"is for architecture {SIGLIP}, not {CLIP_TWIN}; .*logit_bias: "
                                              r"\[\] in the file vs absent"):
        load_model(CLIP_TWIN, str(ckpts / "siglip.pt"))


def test_cli_refuses_clip_weights_in_siglip_model(ckpts, capsys):
    lines = one_error_line(capsys, "check-model", "--model", SIGLIP, "--pretrained", str(ckpts / "rn.safetensors"))
    assert len(lines) == 1 and "has no logit_bias" in lines[0]


# --- (b) unreadable files and other architectures -----------------------------------------------------------

def _noise(n: int) -> bytes:
    data = bytearray(random.Random(0).randbytes(n))
    data[0] = 0x07  # neither a zip ('PK') nor a pickle (0x80) header
    return bytes(data)


def _write_unreadable(path, kind, ckpts):
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "noise":
        path.write_bytes(_noise(512))
    elif kind == "list":
        torch.save([1, 2, 3], path)
    elif kind == "objects":
        import argparse

        torch.save({"state_dict": {"w": torch.zeros(2)}, "args": argparse.Namespace(lr=1)}, path)
    elif kind == "renamed":
        path.write_bytes((ckpts / ("micro.pt" if path.suffix == ".safetensors" else "micro.safetensors")).read_bytes())


@pytest.mark.parametrize("name, kind, expected", [
    ("empty.pt", "empty", "the file is empty (0 bytes)"),
    ("empty.safetensors", "empty", "the file is empty (0 bytes)"),
    ("noise.pt", "noise", "it is not a torch or safetensors file"),
    ("noise.safetensors", "noise", "it is not a torch or safetensors file"),
    ("list.pt", "list", "it holds a list, not a state dict"),
    ("objects.pt", "objects", "besides tensors it holds Python objects (argparse.Namespace)"),
    ("renamed.pt", "renamed", "it is a safetensors file, which open_clip reads only when its name ends in "
                              ".safetensors; rename it to renamed.safetensors"),
    ("renamed.safetensors", "renamed", "it is a torch file, not safetensors; rename it to renamed.pt"),
])
def test_unreadable_file_is_one_clear_line(ckpts, tmp_path, name, kind, expected):
    path = tmp_path / name
    _write_unreadable(path, kind, ckpts)
    with pytest.raises(CheckpointError) as err:
        load_model("clipstudy-micro", str(path))
    msg = str(err.value)
    assert msg.startswith(f"cannot read checkpoint {path}: ") and expected in msg and "\n" not in msg
    assert "weights_only" not in msg and "Error" not in msg  # no torch advice, no exception class names


@pytest.mark.parametrize("arch, name, other", [
    (CLIP_TWIN, "micro.pt", "clipstudy-micro"),
    (CLIP_TWIN, "micro.safetensors", "clipstudy-micro"),
    ("clipstudy-vit-tiny", "micro.pt", "clipstudy-micro"),
    ("clipstudy-micro", "rn.pt", CLIP_TWIN),
    ("clipstudy-micro", "rn.safetensors", CLIP_TWIN),
    ("ViT-B-32", "micro.pt", "clipstudy-micro"),  # an open_clip architecture: its text tower is wider
])
def test_checkpoint_of_another_architecture_is_named(ckpts, arch, name, other):
    path = ckpts / name
    with pytest.raises(CheckpointError) as err:
        load_model(arch, str(path))
    msg = str(err.value)
    assert msg.startswith(f"checkpoint {path} is for architecture {other}, not {arch}; load it with the model name")
    assert "(first mismatch: " in msg and f"in the file vs " in msg and "pos_embed width changed" not in msg


def test_unknown_architecture_names_first_mismatch(ckpts, tmp_path):
    state = torch.load(ckpts / "micro.pt")
    state["visual.conv1.weight"] = torch.zeros(32, 3, 4, 4)  # a patch size no known architecture has
    path = tmp_path / "odd.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"is not a checkpoint of clipstudy-micro and fits none of the known "
                                              r"architectures \(first mismatch: visual.conv1.weight: \[32, 3, 4, 4\] "
                                              r"in the file vs \[32, 3, 8, 8\] in clipstudy-micro\)"):
        load_model("clipstudy-micro", str(path))


def test_state_dict_of_another_kind_of_model(tmp_path):
    path = tmp_path / "classifier.pt"
    torch.save({"fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}, path)
    with pytest.raises(CheckpointError, match="is not a CLIP checkpoint: it has no image and text tower weights"):
        load_model("clipstudy-micro", str(path))


def test_cli_bad_checkpoints_are_one_line(ckpts, tmp_path, capsys):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for args, expected in [
        (["--model", "clipstudy-micro", "--pretrained", str(empty)], "the file is empty"),
        (["--model", CLIP_TWIN, "--pretrained", str(ckpts / "micro.pt")],
         f"is for architecture clipstudy-micro, not {CLIP_TWIN}"),
    ]:
        lines = one_error_line(capsys, "check-model", *args)
        assert len(lines) == 1 and expected in lines[0]


# --- (c) downloads: one notice, a short timeout, a clear failure --------------------------------------------

def test_download_timeout_setting(monkeypatch):
    from clipstudy.models import DEFAULT_DOWNLOAD_TIMEOUT, download_timeout

    monkeypatch.delenv("CLIPSTUDY_DOWNLOAD_TIMEOUT", raising=False)
    assert download_timeout() == DEFAULT_DOWNLOAD_TIMEOUT == 10
    monkeypatch.setenv("CLIPSTUDY_DOWNLOAD_TIMEOUT", "2.5")
    assert download_timeout() == 2.5
    for bad in ("abc", "0", "-1", "inf"):
        monkeypatch.setenv("CLIPSTUDY_DOWNLOAD_TIMEOUT", bad)
        with pytest.raises(ConfigError, match="CLIPSTUDY_DOWNLOAD_TIMEOUT must be a positive number of seconds"):
            download_timeout()


def test_download_timeouts_reach_huggingface_hub():
    import huggingface_hub.constants as hc

    from clipstudy.models import _download_timeouts

    before = hc.HF_HUB_ETAG_TIMEOUT, hc.HF_HUB_DOWNLOAD_TIMEOUT, socket.getdefaulttimeout()
    with _download_timeouts(1.5):
        assert hc.HF_HUB_ETAG_TIMEOUT == hc.HF_HUB_DOWNLOAD_TIMEOUT == socket.getdefaulttimeout() == 1.5
    assert (hc.HF_HUB_ETAG_TIMEOUT, hc.HF_HUB_DOWNLOAD_TIMEOUT, socket.getdefaulttimeout()) == before


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A Hugging Face endpoint on localhost that accepts connections and never answers (a network that drops
    everything), an empty cache, downloads allowed and the timeout at 1 s."""
    import huggingface_hub.constants as hc

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)  # the kernel completes connections; nobody reads or replies
    monkeypatch.setattr(hc, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("CLIPSTUDY_DOWNLOAD_TIMEOUT", "1")
    yield hc.ENDPOINT
    server.close()


def test_download_without_answer_fails_within_timeout(hub, capsys):
    t = time.time()
    with pytest.raises(CheckpointError) as err:
        load_model("RN50", "openai", allow_download=True)
    assert time.time() - t < 10  # open_clip + huggingface_hub alone: several 10 s timeouts and retries
    msg = str(err.value)
    assert msg.startswith(f"downloading the RN50 weights 'openai' failed: {hub}/timm/resnet50_clip.openai "
                          "gave no answer within 1 s")
    assert "pass it with --pretrained /path/to/weights.safetensors" in msg and "\n" not in msg
    notices = [ln for ln in capsys.readouterr().err.splitlines() if "downloading the RN50 weights" in ln]
    assert notices == [f"clipstudy: downloading the RN50 weights 'openai' from {hub}/timm/resnet50_clip.openai "
                       "(network timeout 1 s, CLIPSTUDY_DOWNLOAD_TIMEOUT)"]


def test_cli_download_failure(hub, capsys):
    t = time.time()
    lines = one_error_line(capsys, "check-model", "--model", "RN50", "--pretrained", "openai", "--download")
    assert time.time() - t < 10
    assert len(lines) == 2 and lines[0].startswith("clipstudy: downloading the RN50 weights 'openai' from")
    assert "failed" in lines[1] and "--pretrained /path/to/weights.safetensors" in lines[1]


def test_download_with_hub_offline_says_so(hub, monkeypatch):
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError, match="HF_HUB_OFFLINE is set, which forbids downloads; unset it"):
        load_model("RN50", "openai", allow_download=True)


def test_cached_tag_is_not_downloaded(hub, tmp_path):
    from clipstudy.models import _tag_cached

    assert not _tag_cached("RN50", "openai")
    snapshot = tmp_path / "hub" / "models--timm--resnet50_clip.openai" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"x")
    (tmp_path / "hub" / "models--timm--resnet50_clip.openai" / "refs").mkdir()
    (tmp_path / "hub" / "models--timm--resnet50_clip.openai" / "refs" / "main").write_text("0" * 40)
    assert _tag_cached("RN50", "openai")  # then it is read offline: no notice, no network
