"""The QCD U-Nets as appendix A.3: depth 1–6, 2^(4+i) filters, dropout 0.2·(1+0.25·(i−1)),
transposed-conv decoder, 3 classes; built by name from the registry."""
import pytest
import torch

from cmrlib.models.registry import build_architecture
from cmrlib.qcd.unet import N_CLASSES, QCDConfig, QCDEnsemble, QCDUNet, config_args


def test_paper_preset_filters_and_dropout_follow_the_appendix():
    c = QCDConfig.preset("paper")
    assert c.size == 256 and c.depths == (1, 2, 3, 4, 5, 6)
    assert [c.filters(i) for i in range(1, 7)] == [2 ** (4 + i) for i in range(1, 7)]
    assert [round(c.level_dropout(i), 3) for i in range(1, 7)] == [0.2, 0.25, 0.3, 0.35, 0.4, 0.45]


@pytest.mark.parametrize("depth", [1, 2, 3, 6])
def test_unet_of_each_depth_keeps_the_grid_and_has_depth_minus_one_poolings(depth):
    c = QCDConfig.preset("compact")
    net = QCDUNet(depth, c).eval()
    with torch.no_grad():
        y = net(torch.zeros(2, 1, 64, 64))
    assert y.shape == (2, N_CLASSES, 64, 64)
    deconvs = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(deconvs) == depth - 1 and all(m.kernel_size == (2, 2) and m.stride == (2, 2) for m in deconvs)
    drops = [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops[:depth] == pytest.approx([c.level_dropout(i) for i in range(1, depth + 1)])


def test_ensemble_is_built_by_name_from_manifest_arguments():
    args = config_args(QCDConfig.preset("compact"))
    model = build_architecture("qcd_ensemble", **args)
    assert isinstance(model, QCDEnsemble) and len(model.nets) == 6
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 1, 128, 128)).shape == (6, 1, N_CLASSES, 128, 128)
