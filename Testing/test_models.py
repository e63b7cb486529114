"""Model zoo: manifest, safetensors, checksum, user folder override, CLI verify."""
import json

import pytest
import torch

from cmrlib import ModelError
from cmrlib.cli import main
from cmrlib.models import (ModelEntry, build_architecture, list_models, load_model, read_manifest,
                           register_architecture, save_model, verify)


@register_architecture("test-tiny-cnn")
def _tiny(channels: int = 4) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(1, channels, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(channels, 1, 1))


def _entry(name="tiny", channels=4):
    return ModelEntry(name=name, task="test", architecture="test-tiny-cnn", file=f"{name}.safetensors",
                      sha256="", arch_args={"channels": channels}, trained_on="nothing (unit test)",
                      train_command="(unit test)")


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("CMR_MODELS_DIR", str(folder))
    torch.manual_seed(0)
    model = build_architecture("test-tiny-cnn", channels=4)
    save_model(model, _entry(), folder)
    return folder, model


def test_save_list_load_same_outputs(user_models):
    folder, model = user_models
    entries = read_manifest(folder)
    assert len(entries) == 1 and len(entries[0].sha256) == 64
    assert "tiny" in [m.name for m in list_models()]
    loaded, entry = load_model("tiny", device="cpu")
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(loaded(x), model.eval()(x)) and not loaded.training
    assert "phantom-trained" in entry.notice


def test_checksum_mismatch_fails_loudly(user_models, capsys):
    folder, _ = user_models
    path = folder / "tiny.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_model("tiny")
    assert main(["models", "verify"]) == 1
    assert "checksum mismatch" in capsys.readouterr().err


def test_missing_file_and_unknown_model(user_models, capsys):
    folder, _ = user_models
    (folder / "tiny.safetensors").unlink()
    with pytest.raises(ModelError, match="weights file missing"):
        verify(read_manifest(folder)[0])
    with pytest.raises(ModelError, match="no model named 'nope'"):
        load_model("nope")
    assert main(["models", "verify"]) == 1


def test_mismatched_architecture_is_refused(user_models):
    folder, _ = user_models
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["models"][0]["arch_args"] = {"channels": 8}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="do not match"):
        load_model("tiny")


def test_bundled_manifest_is_valid_and_verified(capsys, monkeypatch):
    monkeypatch.delenv("CMR_MODELS_DIR", raising=False)
    assert main(["models", "list"]) == 0
    assert main(["models", "verify"]) == 0  # every bundled weight file matches its sha256
    for entry in list_models():
        assert entry.train_command.startswith("cmr train") and entry.phantom_trained
