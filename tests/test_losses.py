"""Losses against float64 references (and PyTorch when installed); stability; bad targets."""
import numpy as np
import pytest

from fastnn.losses import HingeLoss, MSELoss, SoftmaxCrossEntropy
from reference import core as R
from reference.gradcheck import numerical_grad, rel_error


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_hard_targets(smoothing, rng):
    z = rng.standard_normal((7, 5)) * 3
    y = rng.integers(0, 5, 7)
    loss, dz = SoftmaxCrossEntropy(label_smoothing=smoothing)(z, y)
    rl, rdz = R.cross_entropy(z, y, smoothing)
    assert loss == pytest.approx(rl, rel=1e-6)
    np.testing.assert_allclose(dz, rdz, rtol=1e-5, atol=1e-7)
    num = numerical_grad(lambda v: R.cross_entropy(v, y, smoothing)[0], z.copy())
    assert rel_error(rdz, num) < 1e-4


def test_cross_entropy_soft_targets(rng):
    z = rng.standard_normal((6, 4))
    q = rng.dirichlet(np.ones(4), 6)
    loss, dz = SoftmaxCrossEntropy()(z, q)
    rl, rdz = R.cross_entropy(z, q)
    assert loss == pytest.approx(rl, rel=1e-6)
    np.testing.assert_allclose(dz, rdz, rtol=1e-5, atol=1e-7)
    # a one-hot soft target equals the hard target
    y = rng.integers(0, 4, 6)
    assert SoftmaxCrossEntropy()(z, np.eye(4)[y])[0] == pytest.approx(SoftmaxCrossEntropy()(z, y)[0])


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], np.float32)
    loss, dz = SoftmaxCrossEntropy()(z, np.array([0, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(dz))
    assert loss == pytest.approx(np.log(2) / 2, rel=1e-6)
    loss, _ = SoftmaxCrossEntropy()(z, np.array([1, 0]))
    assert loss == pytest.approx((2e4 + 2e4 + np.log(2)) / 2, rel=1e-6)


def test_mse_and_hinge_match_references(rng):
    y, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    loss, g = MSELoss()(y, t)
    rl, rg = R.mse(y, t)
    assert loss == pytest.approx(rl, rel=1e-6)
    np.testing.assert_allclose(g, rg, rtol=1e-5, atol=1e-7)
    x, lab = rng.standard_normal((8, 4)), rng.integers(0, 4, 8)
    for margin in (1.0, 0.3):
        loss, g = HingeLoss(margin)(x, lab)
        rl, rg = R.multi_margin(x.astype(np.float32).astype(np.float64), lab, margin)
        assert loss == pytest.approx(rl, rel=1e-5)
        np.testing.assert_allclose(g, rg, atol=1e-7)
    num = numerical_grad(lambda v: R.multi_margin(v, lab)[0], x.copy())
    assert rel_error(R.multi_margin(x, lab)[1], num) < 1e-4


def test_losses_match_torch(rng):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    z = rng.standard_normal((9, 6)).astype(np.float32)
    y = rng.integers(0, 6, 9)
    for eps in (0.0, 0.2):
        zt = torch.tensor(z, requires_grad=True)
        lt = TF.cross_entropy(zt, torch.tensor(y), label_smoothing=eps)
        lt.backward()
        loss, dz = SoftmaxCrossEntropy(eps)(z, y)
        assert loss == pytest.approx(lt.item(), rel=1e-5)
        np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-4, atol=1e-6)
    zt = torch.tensor(z, requires_grad=True)
    lt = TF.multi_margin_loss(zt, torch.tensor(y))
    lt.backward()
    loss, dz = HingeLoss()(z, y)
    assert loss == pytest.approx(lt.item(), rel=1e-5)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-4, atol=1e-6)
    t = rng.standard_normal((9, 6)).astype(np.float32)
    zt = torch.tensor(z, requires_grad=True)
    lt = TF.mse_loss(zt, torch.tensor(t))
    lt.backward()
    loss, dz = MSELoss()(z, t)
    assert loss == pytest.approx(lt.item(), rel=1e-5)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_bad_targets():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"targets: class indices must lie in \[0, 4\)"):
        SoftmaxCrossEntropy()(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="targets: expected 3 labels"):
        SoftmaxCrossEntropy()(z, np.array([0, 1]))
    with pytest.raises(ValueError, match="soft targets must have the outputs' shape"):
        SoftmaxCrossEntropy()(z, np.zeros((3, 5)))
    with pytest.raises(TypeError, match="targets"):
        SoftmaxCrossEntropy()(z, np.array(["a", "b", "c"]))
    with pytest.raises(ValueError, match="outputs: expected a 2-d array"):
        SoftmaxCrossEntropy()(np.zeros(4, np.float32), np.array([0]))
    with pytest.raises(ValueError, match="targets: expected the outputs' shape"):
        MSELoss()(z, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="label_smoothing"):
        SoftmaxCrossEntropy(label_smoothing=1.5)
    with pytest.raises(TypeError, match="targets: expected integer class indices"):
        HingeLoss()(z, np.array([0.0, 1.0, 2.0]))
