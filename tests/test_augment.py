"""Tests of fastnn.augment: exact identities, the C++ warps against float64 references,
reproducibility, input immutability, thread independence and bad inputs."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import augment as A
from fastnn._dispatch import _C
from reference import augment as ref


def images(n=5, c=3, h=9, w=7, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32)


ALL_RANDOM = [
    A.RandomCrop(7, padding=2), A.RandomCrop((5, 4)), A.CenterCrop((5, 3)),
    A.RandomHorizontalFlip(), A.RandomVerticalFlip(),
    A.RandomAffine(20, translate=(0.2, 0.1), scale=(0.8, 1.2), shear=(-10, 10, -5, 5)),
    A.ColorJitter(0.4, 0.4, 0.4), A.Cutout(3), A.Cutout((2, 5), fill=0.0),
    A.Compose([A.RandomCrop(7, 1), A.RandomHorizontalFlip(), A.RandomAffine(10)]),
]


# --- deterministic identities ------------------------------------------------------------
def test_flip_twice_is_identity():
    x = images()
    for t in (A.RandomHorizontalFlip(p=1.0), A.RandomVerticalFlip(p=1.0)):
        y = t(x, np.random.default_rng(0))
        assert not np.array_equal(y, x)
        assert np.array_equal(t(y, np.random.default_rng(1)), x)
    assert np.array_equal(A.RandomHorizontalFlip(p=1.0)(x, None), x[..., ::-1])
    assert np.array_equal(A.RandomVerticalFlip(p=0.0)(x, None), x)


def test_flip_is_per_sample():
    x = images(n=64, c=1, h=2, w=3)
    y = A.RandomHorizontalFlip(p=0.5)(x, np.random.default_rng(3))
    flipped = np.array([np.array_equal(y[i], x[i, :, :, ::-1]) for i in range(64)])
    kept = np.array([np.array_equal(y[i], x[i]) for i in range(64)])
    assert (flipped | kept).all() and 10 < flipped.sum() < 54


@pytest.mark.parametrize("size,padding", [(9, 4), ((7, 5), 2), ((9, 7), 0), ((3, 11), (0, 3))])
def test_random_crop_equals_numpy_slicing(size, padding):
    x = images(n=6, h=9, w=7)
    t = A.RandomCrop(size, padding=padding)
    y = t(x, np.random.default_rng(5))
    # Redraw the offsets with the same generator state, as the transform does.
    (oh, ow), (ph, pw) = t.size, t.padding
    rng = np.random.default_rng(5)
    tops = rng.integers(0, 9 + 2 * ph - oh + 1, size=6)
    lefts = rng.integers(0, 7 + 2 * pw - ow + 1, size=6)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    want = np.stack([xp[i, :, tops[i]:tops[i] + oh, lefts[i]:lefts[i] + ow] for i in range(6)])
    assert y.dtype == np.float32 and np.array_equal(y, want)


def test_crop_kernel_matches_reference_with_fill():
    x = images(n=4, c=2, h=5, w=6)
    offsets = np.array([[0, 0], [6, 7], [3, 1], [1, 5]], np.int64)
    y = _C.crop_padded(x, offsets, 4, 5, 3, 3, 0.25)
    assert np.array_equal(y, ref.crop_padded(x, offsets, 4, 5, 3, 3, 0.25).astype(np.float32))


def test_center_crop_matches_torchvision_rounding():
    x = images(h=9, w=7)
    y = A.CenterCrop((4, 4))(x)
    assert np.array_equal(y, x[:, :, 2:6, 2:6])  # round(2.5) = 2, round(1.5) = 2


def test_affine_identity_returns_input_exactly():
    x = images(n=3, c=2, h=11, w=6)
    x[0, 0, 0, 0] = -7.5  # values outside [0, 1] pass through untouched
    for t in (A.RandomAffine(), A.RandomAffine(0, translate=(0, 0), scale=(1, 1), shear=0)):
        y = t(x, np.random.default_rng(0))
        assert np.array_equal(y, x)
    theta = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), (3, 1))
    assert np.array_equal(_C.affine_warp_bilinear(x, theta, 11, 6, 0.3), x)


def test_affine_rotation_90_and_integer_translation():
    x = images(n=2, c=3, h=6, w=6)
    theta = A.affine_matrices(np.array([90.0, 0.0]), np.array([[0.0, 0.0], [2.0, -1.0]]),
                              np.ones(2), np.zeros((2, 2))).astype(np.float32)
    y = _C.affine_warp_bilinear(x, theta, 6, 6, 0.0)
    # torchvision's F.affine (used by RandomAffine) rotates clockwise for positive angles;
    # translate moves the content right/down.
    np.testing.assert_allclose(y[0], np.rot90(x[0], -1, axes=(1, 2)), atol=1e-6)
    want = np.zeros_like(x[1])
    want[:, 0:5, 2:6] = x[1][:, 1:6, 0:4]
    np.testing.assert_allclose(y[1], want, atol=1e-6)


@pytest.mark.parametrize("shape,out", [((3, 3, 9, 7), (9, 7)), ((2, 1, 1, 1), (1, 1)),
                                       ((4, 5, 8, 17), (5, 12)), ((1, 2, 16, 16), (16, 16))])
def test_affine_kernel_matches_float64_reference(shape, out):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    rng = np.random.default_rng(2)
    n = shape[0]
    theta = A.affine_matrices(rng.uniform(-180, 180, n), rng.uniform(-3, 3, (n, 2)),
                              rng.uniform(0.5, 2.0, n), rng.uniform(-30, 30, (n, 2))).astype(np.float32)
    for fill in (0.0, -0.5):
        y = _C.affine_warp_bilinear(x, theta, out[0], out[1], fill)
        want = ref.affine_warp_bilinear(x, theta, out[0], out[1], fill)
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_affine_far_outside_reads_fill():
    x = images(n=2)
    theta = np.array([[1, 0, 1e30, 0, 1, 0], [1, 0, 0, 0, 1, -1e9]], np.float32)
    y = _C.affine_warp_bilinear(x, theta, 9, 7, 0.75)
    assert np.array_equal(y, np.full_like(y, 0.75))


def test_affine_matches_torch_grid_sample():
    """Same grid as torchvision's F.affine (tensor path): grid_sample, align_corners=False."""
    torch = pytest.importorskip("torch")
    x = images(n=4, c=3, h=10, w=13, seed=3)
    t = A.RandomAffine(30, translate=(0.2, 0.2), scale=(0.7, 1.3), shear=(-15, 15, -10, 10))
    y = t(x, np.random.default_rng(4))
    theta = t.sample_matrices(4, 10, 13, np.random.default_rng(4)).astype(np.float64)
    h, w = 10, 13
    xs = torch.linspace(-w * 0.5 + 0.5, w * 0.5 - 0.5, w, dtype=torch.float64)
    ys = torch.linspace(-h * 0.5 + 0.5, h * 0.5 - 0.5, h, dtype=torch.float64)
    base = torch.stack([xs.expand(h, w), ys[:, None].expand(h, w), torch.ones(h, w, dtype=torch.float64)], -1)
    th = torch.from_numpy(theta).view(4, 2, 3)
    grid = base.view(1, h * w, 3) @ (th.transpose(1, 2) / torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float64))
    want = torch.nn.functional.grid_sample(torch.from_numpy(x).double(), grid.view(4, h, w, 2),
                                           mode="bilinear", padding_mode="zeros", align_corners=False)
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-4, atol=1e-5)


def test_affine_parameters_are_per_sample():
    x = np.repeat(images(n=1), 8, axis=0)
    y = A.RandomAffine(45)(x, np.random.default_rng(0))
    assert len({y[i].tobytes() for i in range(8)}) == 8


# --- colour ------------------------------------------------------------------------------
@pytest.mark.parametrize("flags", [(1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1)])
def test_color_jitter_kernel_matches_reference(flags):
    x = images(n=6, c=3, h=5, w=9) * 1.2 - 0.1
    factors = np.random.default_rng(7).uniform(0.2, 1.8, (6, 3)).astype(np.float32)
    y = _C.color_jitter(x, factors, *map(bool, flags))
    np.testing.assert_allclose(y, ref.color_jitter(x, factors, *flags), rtol=1e-4, atol=1e-6)


def test_color_jitter_transform_and_grey_images():
    x = images(n=4, c=3)
    t = A.ColorJitter(brightness=0.5, contrast=(0.5, 1.5), saturation=0.3)
    y = t(x, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    f = np.stack([rng.uniform(0.5, 1.5, 4), rng.uniform(0.5, 1.5, 4), rng.uniform(0.7, 1.3, 4)], 1)
    np.testing.assert_allclose(y, ref.color_jitter(x, f.astype(np.float32), 1, 1, 1), rtol=1e-4, atol=1e-6)
    g = images(n=3, c=1)
    yg = A.ColorJitter(0.3, 0.3)(g, np.random.default_rng(0))
    assert yg.shape == g.shape and not np.array_equal(yg, g)
    assert np.array_equal(A.ColorJitter()(x, None), x)
    with pytest.raises(ValueError, match="3 channels"):
        A.ColorJitter(saturation=0.2)(g, None)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        A.ColorJitter(0.2)(images(c=2), None)


def test_color_pca_eigenvectors_match_numpy():
    x = images(n=20, c=3, h=6, w=5)
    x[:, 1] = 0.6 * x[:, 0] + 0.4 * x[:, 1]  # correlated channels
    t = A.ColorPCA(std=0.1).fit(x)
    pixels = x.transpose(0, 2, 3, 1).reshape(-1, 3).astype(np.float64)
    lam, vec = np.linalg.eigh(np.cov(pixels, rowvar=False))
    np.testing.assert_allclose(t.eigenvalues_, lam, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(np.abs(t.eigenvectors_.T @ vec), np.eye(3), atol=1e-8)
    y = t(x, np.random.default_rng(0))
    alpha = np.random.default_rng(0).normal(0, 0.1, (20, 3))
    shift = (alpha * lam) @ t.eigenvectors_.T
    np.testing.assert_allclose(y - x, np.broadcast_to(shift[:, :, None, None], x.shape), atol=1e-6)
    t2 = A.ColorPCA()
    t2.load_state_dict(t.state_dict())
    assert np.array_equal(t2(x, np.random.default_rng(0)), y)
    with pytest.raises(RuntimeError, match="not fitted"):
        A.ColorPCA()(x, None)
    with pytest.raises(ValueError, match="RGB"):
        A.ColorPCA().fit(images(c=1))
    with pytest.raises(ValueError, match="kind"):
        t2.load_state_dict({"kind": np.array("Standardize")})


# --- cutout, mixup, compose --------------------------------------------------------------
def test_cutout_square():
    x = images(n=50, c=2, h=12, w=12)
    y = A.Cutout(4, fill=-1.0)(x, np.random.default_rng(0))
    for i in range(50):
        m = y[i, 0] == -1.0
        assert np.array_equal(m, y[i, 1] == -1.0)
        r, c = np.nonzero(m)
        assert 0 < m.sum() <= 16 and m.sum() == (np.ptp(r) + 1) * (np.ptp(c) + 1)
        assert np.array_equal(y[i][:, ~m], x[i][:, ~m])
    assert sum(int((y[i, 0] == -1).sum()) == 16 for i in range(50)) > 10


def test_mixup_convex_combination_and_targets_sum_to_one():
    x = images(n=8)
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    m = A.Mixup(alpha=0.4, num_classes=5)
    assert m.mixes_labels
    xm, ym = m(x, labels, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    lam = rng.beta(0.4, 0.4)
    perm = rng.permutation(8)
    np.testing.assert_allclose(xm, lam * x + (1 - lam) * x[perm], rtol=1e-6, atol=1e-7)
    assert ym.shape == (8, 5) and ym.dtype == np.float32
    np.testing.assert_allclose(ym.sum(axis=1), 1.0, rtol=1e-6)
    assert (ym >= 0).all() and (xm >= np.minimum(x, x[perm]) - 1e-6).all()
    onehot = np.eye(5, dtype=np.float32)[labels]
    np.testing.assert_allclose(ym, lam * onehot + (1 - lam) * onehot[perm], rtol=1e-6)
    # num_classes inferred from y.max() + 1; soft targets accepted; the loss takes them.
    assert A.Mixup()(x, labels, np.random.default_rng(0))[1].shape == (8, 4)
    xs, ys = A.Mixup()(x, onehot, np.random.default_rng(0))
    assert ys.shape == (8, 5)
    loss, _ = fastnn.SoftmaxCrossEntropy()(np.zeros((8, 5), np.float32), ys)
    assert np.isfinite(loss)


def test_compose_propagates_mixes_labels_and_dataloader_applies_it():
    x = images(n=10, c=1, h=6, w=6)
    y = np.arange(10) % 3
    plain = A.Compose([A.RandomCrop(6, 1), A.RandomHorizontalFlip()])
    mixed = A.Compose([A.RandomCrop(6, 1), A.Mixup(num_classes=3)])
    assert not plain.mixes_labels and mixed.mixes_labels
    dl = fastnn.DataLoader(x, y, batch_size=4, shuffle=False, transform=mixed, rng=np.random.default_rng(0))
    batches = list(dl)
    assert [b[1].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    dl = fastnn.DataLoader(x, y, batch_size=4, transform=plain, rng=np.random.default_rng(0))
    assert all(xb.shape[1:] == (1, 6, 6) and yb.dtype.kind == "i" for xb, yb in dl)
    with pytest.raises(TypeError):
        mixed(x, np.random.default_rng(0), np.random.default_rng(0), 1)


# --- properties of every transform -------------------------------------------------------
@pytest.mark.parametrize("t", ALL_RANDOM, ids=repr)
def test_same_seed_same_batch_and_input_untouched(t):
    x = images(n=6)
    keep = x.copy()
    a = t(x, np.random.default_rng(11))
    b = t(x, np.random.default_rng(11))
    assert np.array_equal(x, keep)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert a is not x and not np.shares_memory(a, x)


def test_mixup_and_colorpca_leave_input_untouched():
    x = images(n=6)
    keep = x.copy()
    y = np.arange(6) % 2
    A.Mixup()(x, y, np.random.default_rng(0))
    A.ColorPCA().fit(x)(x, np.random.default_rng(0))
    assert np.array_equal(x, keep)


def test_float64_and_strided_input_accepted():
    x = images(n=4, w=14)[..., ::2].astype(np.float64)
    y = A.RandomAffine(10)(x, np.random.default_rng(0))
    assert y.dtype == np.float32 and y.shape == x.shape


@pytest.mark.parametrize("t", [A.RandomAffine(25, translate=(0.1, 0.2), scale=(0.8, 1.1), shear=8),
                               A.ColorJitter(0.3, 0.3, 0.3), A.RandomCrop(64, padding=4)], ids=repr)
def test_one_and_two_threads_identical(t, threads):
    # Large enough for several work chunks (the kernels take ~256K-1M elements per chunk).
    x = images(n=200, c=3, h=64, w=64)
    threads(1)
    a = t(x, np.random.default_rng(0))
    threads(2)
    b = t(x, np.random.default_rng(0))
    assert np.array_equal(a, b)


# --- test-time augmentation -------------------------------------------------------------
def test_tta_predict_averages_softmax_over_views():
    x = images(n=7, c=1, h=4, w=4)
    w = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    model = lambda v: v.reshape(v.shape[0], -1) @ w  # noqa: E731
    flip = A.RandomHorizontalFlip(p=1.0)
    p = A.tta_predict(model, x, [flip], batch_size=3)
    from fastnn.losses import softmax
    want = (softmax(model(x)).astype(np.float64) + softmax(model(x[..., ::-1].copy()))) / 2
    np.testing.assert_allclose(p, want, rtol=1e-5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(A.tta_predict(model, x), softmax(model(x)), rtol=1e-6)


def test_tta_predict_restores_training_mode():
    model = fastnn.Sequential(fastnn.Flatten(), fastnn.Linear(16, 3), fastnn.Dropout(0.5))
    model.train()
    x = images(n=5, c=1, h=4, w=4)
    a = A.tta_predict(model, x, [A.RandomVerticalFlip(p=1.0)])
    b = A.tta_predict(model, x, [A.RandomVerticalFlip(p=1.0)])
    assert np.array_equal(a, b) and model.training


# --- bad inputs ---------------------------------------------------------------------------
def test_bad_inputs_raise():
    x = images()
    with pytest.raises(ValueError, match="4-d"):
        A.RandomCrop(3)(x[0], None)
    with pytest.raises(TypeError):
        A.RandomHorizontalFlip()(x.astype(np.int32), None)
    with pytest.raises(ValueError, match="larger"):
        A.RandomCrop(20, padding=2)(x, None)
    with pytest.raises(ValueError, match="larger"):
        A.CenterCrop(10)(x, None)
    with pytest.raises(ValueError, match="p"):
        A.RandomHorizontalFlip(p=1.5)
    with pytest.raises(ValueError, match="size"):
        A.RandomCrop(0)
    with pytest.raises(ValueError, match="degrees"):
        A.RandomAffine(-5)
    with pytest.raises(ValueError, match="translate"):
        A.RandomAffine(translate=(0.5, 1.5))
    with pytest.raises(ValueError, match="scale"):
        A.RandomAffine(scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="shear"):
        A.RandomAffine(shear=(1, 2, 3))
    with pytest.raises(ValueError, match="brightness"):
        A.ColorJitter(brightness=-1)
    with pytest.raises(ValueError, match="alpha"):
        A.Mixup(alpha=0)
    with pytest.raises(ValueError, match="class indices"):
        A.Mixup(num_classes=2)(x, np.array([0, 1, 2, 0, 1]), None)
    with pytest.raises(ValueError, match="labels"):
        A.Mixup()(x, np.array([0, 1]), None)
    with pytest.raises(TypeError, match="callable"):
        A.Compose([A.RandomCrop(3), 5])
    with pytest.raises(TypeError, match="rng"):
        A.Cutout(2)(x, "seed")
    with pytest.raises(ValueError, match="theta"):
        _C.affine_warp_bilinear(x, np.zeros((2, 6), np.float32), 9, 7, 0.0)
    with pytest.raises(TypeError):
        _C.affine_warp_bilinear(x.astype(np.float64), np.zeros((5, 6), np.float32), 9, 7, 0.0)
    with pytest.raises(ValueError, match="offsets"):
        _C.crop_padded(x, -np.ones((5, 2), np.int64), 3, 3, 0, 0, 0.0)
    with pytest.raises(ValueError, match=r"offsets: expected 0 <= top <= 6 .* got \(7, 0\) in row 2"):
        _C.crop_padded(x, np.array([[0, 0]] * 2 + [[7, 0]] + [[0, 0]] * 2, np.int64), 5, 5, 1, 1, 0.0)
    with pytest.raises(ValueError, match="does not fit"):
        _C.crop_padded(x, np.zeros((5, 2), np.int64), 12, 3, 1, 1, 0.0)
    theta = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), (5, 1))
    theta[3, 2] = np.nan
    with pytest.raises(ValueError, match="theta: expected finite values.*row 3"):
        _C.affine_warp_bilinear(x, theta, 9, 7, 0.0)


# --- single-channel images -----------------------------------------------------------------
GREY_OK = [A.RandomCrop(7, padding=2, fill=-0.4), A.CenterCrop(5), A.RandomHorizontalFlip(),
           A.RandomVerticalFlip(), A.RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5),
           A.ColorJitter(brightness=0.3, contrast=0.3), A.Cutout(3)]


@pytest.mark.parametrize("t", GREY_OK, ids=repr)
def test_single_channel_images_work(t):
    x = images(n=5, c=1)
    y = t(x, np.random.default_rng(0))
    assert y.shape[:2] == (5, 1) and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.array_equal(y, t(x, np.random.default_rng(0)))


def test_colour_transforms_on_one_channel_raise_clearly():
    g = images(n=3, c=1)
    with pytest.raises(ValueError, match=r"saturation.*3 channels.*\(3, 1, 9, 7\)"):
        A.ColorJitter(saturation=0.3)(g, None)
    with pytest.raises(ValueError, match=r"ColorPCA needs RGB.*\(3, 1, 9, 7\)"):
        A.ColorPCA().fit(images(c=3))(g, None)
    with pytest.raises(ValueError, match="ColorPCA needs RGB"):
        A.ColorPCA().fit(g)


def test_random_crop_fill_pads_with_the_given_value():
    x = images(n=3, c=1, h=4, w=4)
    y = A.RandomCrop(8, padding=2, fill=-0.25)(x, None)  # the whole padded image
    want = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=-0.25)
    assert np.array_equal(y, want)
    with pytest.raises(ValueError, match="fill"):
        A.RandomCrop(3, fill=float("inf"))


# --- mixup targets in the loss and the trainer ---------------------------------------------
def test_mixup_soft_targets_in_softmax_cross_entropy():
    x = images(n=6)
    xm, ym = A.Mixup(alpha=0.2, num_classes=4)(x, np.array([0, 1, 2, 3, 1, 0]), np.random.default_rng(2))
    z = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    loss, grad = fastnn.SoftmaxCrossEntropy()(z, ym)
    logp = z - z.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    np.testing.assert_allclose(loss, -(ym * logp).sum() / 6, rtol=1e-5)
    np.testing.assert_allclose(grad, (np.exp(logp) - ym) / 6, rtol=1e-4, atol=1e-7)


# --- the DataLoader pipeline ---------------------------------------------------------------
def mnist_pipeline(fill=0.0):
    """The recipe of examples/augment_mnist.py: crops with padding 2, then small affine warps."""
    return A.Compose([A.RandomCrop(28, padding=2, fill=fill),
                      A.RandomAffine(8, scale=(0.9, 1.1), fill=fill)])


def test_dataloader_same_seed_same_batches():
    x = images(n=40, c=1, h=28, w=28)
    y = np.arange(40) % 10

    def epoch(seed):
        dl = fastnn.DataLoader(x, y, batch_size=16, transform=mnist_pipeline(), rng=np.random.default_rng(seed))
        return list(dl)

    a, b, c = epoch(5), epoch(5), epoch(6)
    assert all(np.array_equal(xa, xb) and np.array_equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not np.array_equal(a[0][0], c[0][0])
    # The transform really runs per batch: every sample differs from the stored image.
    xb, yb = a[0]
    assert xb.shape == (16, 1, 28, 28) and not any(np.array_equal(xb[i], x[j]) for i in range(16) for j in range(40))


def test_augmented_mnist_pipeline_trains_bncnn(threads):
    """The augmented loader of the MNIST example (crops pad 2 + affine) feeding the batch-norm
    CNN through the Trainer, on MNIST-shaped synthetic digits (two classes of strokes)."""
    threads(2)
    rng = np.random.default_rng(0)
    n = 64
    x = np.zeros((n, 1, 28, 28), np.float32)
    y = np.arange(n) % 2
    x[y == 0, 0, 6:22, 12:16] = 1.0     # a vertical bar
    x[y == 1, 0, 12:16, 6:22] = 1.0     # a horizontal bar
    x += rng.uniform(0, 0.1, x.shape).astype(np.float32)
    pre = fastnn.preprocess.ChannelMean(scale=True).fit(x)
    xs = pre.transform(x)
    fill = float(pre.transform(np.zeros((1, 1, 1, 1), np.float32)).ravel()[0])
    loader = fastnn.DataLoader(xs, y, batch_size=32, transform=mnist_pipeline(fill), rng=rng)
    model = fastnn.models.bncnn((1, 28, 28), 2, rng=np.random.default_rng(0))
    trainer = fastnn.Trainer(model, fastnn.SoftmaxCrossEntropy(), fastnn.optim.Adam(model.parameters(), lr=3e-3))
    h = trainer.fit(loader, val_data=(xs, y), epochs=2, progress=False)
    assert len(h.train_loss) == 2 and np.isfinite(h.train_loss).all()
    assert h.val_acc[-1] >= 0.9  # bars stay bars under crops and ±8° warps


# --- tta with crop views ------------------------------------------------------------------
def test_tta_predict_with_crop_views_on_a_model():
    rng = np.random.default_rng(0)
    model = fastnn.Sequential(fastnn.Flatten(), fastnn.Linear(36, 4, rng=rng))
    x = images(n=5, c=1, h=6, w=6)
    views = [A.RandomHorizontalFlip(p=1.0), A.RandomCrop(6, padding=1)]
    p = A.tta_predict(model, x, views, rng=np.random.default_rng(3))
    from fastnn.losses import softmax
    gen = np.random.default_rng(3)  # the views draw from one generator, in order
    views[0](x, gen)
    crop = views[1](x, gen)
    want = (softmax(model(x)).astype(np.float64) + softmax(model(x[..., ::-1].copy())) + softmax(model(crop))) / 3
    np.testing.assert_allclose(p, want, rtol=1e-5)
    with pytest.raises(TypeError, match="label-mixing"):
        A.tta_predict(model, x, [A.Mixup()])
