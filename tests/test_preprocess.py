"""Tests of fastnn.preprocess: the preprocessors against float64 references, whitening
identities (identity covariance on the training data, inverse_transform restores), eps on
constant features, state_dict round trips (also through a model checkpoint) and bad inputs."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import preprocess as P
from reference import preprocess as ref


def data(n=200, shape=(3, 4, 5), seed=0):
    """Correlated, non-centred features of very different scales."""
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    mix = rng.standard_normal((d, d)) * 0.3 + np.diag(rng.uniform(0.5, 3.0, d))
    x = rng.standard_normal((n, d)) @ mix + rng.uniform(-2, 5, d)
    return x.reshape((n,) + shape).astype(np.float32)


def cov(z):
    z = np.asarray(z, np.float64).reshape(len(z), -1)
    c = z - z.mean(axis=0)
    return c.T @ c / len(z)


def fitted():
    """One fitted instance of every preprocessor (fit on the same data)."""
    x = data(n=120, shape=(2, 3, 2))
    return x, [P.Standardize().fit(x), P.MeanImage().fit(x), P.ChannelMean().fit(x),
               P.ChannelMean(scale=True).fit(x), P.PCAWhiten().fit(x), P.PCAWhiten(5).fit(x),
               P.ZCAWhiten().fit(x)]


# --- against the float64 references -------------------------------------------------------
def test_standardize_mean_image_channel_mean_match_reference():
    x, xt = data(), data(n=17, seed=1)
    np.testing.assert_allclose(P.Standardize(eps=1e-3).fit(x).transform(xt),
                               ref.standardize(x, xt, 1e-3), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(P.MeanImage().fit(x).transform(xt), ref.mean_image(x, xt),
                               rtol=1e-4, atol=1e-4)
    for scale in (False, True):
        np.testing.assert_allclose(P.ChannelMean(scale=scale).fit(x).transform(xt),
                                   ref.channel_mean(x, xt, scale), rtol=1e-4, atol=1e-4)


def test_channel_mean_accepts_other_spatial_sizes_and_any_rank():
    x = data(shape=(3, 6, 6))
    t = P.ChannelMean(scale=True).fit(x)
    assert t.feature_shape_ == (3,)
    other = data(n=5, shape=(3, 2, 9), seed=4)
    np.testing.assert_allclose(t.transform(other), ref.channel_mean(x, other, True), rtol=1e-4, atol=1e-4)
    flat = data(shape=(4,))  # (N, C): channels are features
    np.testing.assert_allclose(P.ChannelMean(True).fit_transform(flat), ref.channel_mean(flat, flat, True),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [None, 1, 7])
def test_pca_whiten_matches_svd_reference_up_to_sign(k):
    x, xt = data(shape=(12,)), data(n=9, shape=(12,), seed=2)
    t = P.PCAWhiten(n_components=k, eps=1e-4).fit(x)
    z, want = t.transform(xt), ref.pca_whiten(x, xt, k, 1e-4)
    assert z.shape == (9, k or 12) and z.dtype == np.float32
    signs = np.sign((z * want).sum(axis=0))
    np.testing.assert_allclose(z * signs, want, rtol=1e-3, atol=1e-4)
    if k is not None:
        np.testing.assert_allclose(t.inverse_transform(z), ref.pca_project(x, xt, k), rtol=1e-3, atol=1e-3)


def test_zca_whiten_matches_svd_reference():
    x, xt = data(shape=(2, 3, 2)), data(n=9, shape=(2, 3, 2), seed=2)
    t = P.ZCAWhiten(eps=1e-4).fit(x)
    z = t.transform(xt)
    assert z.shape == xt.shape
    np.testing.assert_allclose(z, ref.zca_whiten(x, xt, 1e-4), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(t._w, t._w.T, atol=1e-5)  # ZCA's matrix is symmetric


# --- whitening identities -----------------------------------------------------------------
@pytest.mark.parametrize("cls", [P.PCAWhiten, P.ZCAWhiten])
def test_whitening_gives_identity_covariance_and_inverse_restores(cls):
    x = data(n=400, shape=(2, 4, 3))
    t = cls(eps=1e-12)
    z = t.fit_transform(x)
    np.testing.assert_allclose(cov(z), np.eye(24), atol=2e-4)
    np.testing.assert_allclose(z.reshape(len(z), -1).mean(axis=0), 0.0, atol=1e-4)
    back = t.inverse_transform(z)
    assert back.shape == x.shape and back.dtype == np.float32
    np.testing.assert_allclose(back, x, rtol=1e-4, atol=2e-4 * np.abs(x).max())
    # With the default eps the covariance is diag(λ / (λ + eps)) in the eigenbasis, exactly.
    t = cls().fit(x)
    lam = t.explained_variance_ if cls is P.PCAWhiten else t.eigenvalues_
    c = cov(t.transform(x))
    if cls is P.ZCAWhiten:
        c = t.components_.T @ c @ t.components_
    np.testing.assert_allclose(c, np.diag(lam / (lam + 1e-5)), atol=2e-4)


def test_pca_whiten_keeps_n_components_with_identity_covariance():
    x = data(n=300, shape=(10,))
    t = P.PCAWhiten(n_components=4, eps=1e-12).fit(x)
    z = t.transform(x)
    assert z.shape == (300, 4)
    np.testing.assert_allclose(cov(z), np.eye(4), atol=2e-4)
    assert (np.diff(t.explained_variance_) <= 0).all()  # largest variance first
    np.testing.assert_allclose(t.inverse_transform(z), ref.pca_project(x, x, 4), rtol=1e-3, atol=1e-3)


# --- eps: constant features ---------------------------------------------------------------
def test_constant_features_stay_finite():
    x = data(n=50, shape=(2, 3, 3))
    x[:, 0, 1, 1] = 3.0    # one constant feature
    x[:, 1] = x[:, 1, :1, :1] * 0 + 0.25  # channel 1 constant everywhere
    for t in (P.Standardize(), P.ChannelMean(scale=True), P.PCAWhiten(), P.ZCAWhiten()):
        z = t.fit_transform(x)
        assert np.isfinite(z).all(), t
        assert np.abs(z).max() < 1e3, t  # eps keeps the constant directions from blowing up
        np.testing.assert_allclose(t.inverse_transform(z), x, rtol=1e-4, atol=1e-3)
    z = P.Standardize().fit_transform(x)
    assert np.array_equal(z[:, 0, 1, 1], np.zeros(50, np.float32))
    assert np.array_equal(P.ChannelMean(scale=True).fit_transform(x)[:, 1], np.zeros((50, 3, 3), np.float32))
    one = P.Standardize().fit(x[:1])  # one sample: every feature is constant
    assert np.array_equal(one.transform(x[:1]), np.zeros_like(x[:1]))


# --- the common interface -----------------------------------------------------------------
def test_fit_returns_self_fit_transform_and_input_untouched():
    x = data(n=60, shape=(2, 3, 2))
    keep = x.copy()
    for t in fitted()[1]:
        t2 = type(t)(**_hyper(t))
        assert t2.fit(x) is t2
        z = t2.transform(x)
        assert z.dtype == np.float32 and not np.shares_memory(z, x)
        assert np.array_equal(type(t)(**_hyper(t)).fit_transform(x), z)
    assert np.array_equal(x, keep)


def _hyper(t):
    return {h: getattr(t, h) for h in t._hyper}


def test_inverse_transform_restores_for_every_preprocessor():
    x, ts = fitted()
    for t in ts:
        back = t.inverse_transform(t.transform(x))
        want = ref.pca_project(x, x, 5) if getattr(t, "n_components", None) == 5 else x
        np.testing.assert_allclose(back, want, rtol=1e-4, atol=1e-3, err_msg=repr(t))


def test_float64_and_strided_input_accepted():
    x = data(n=40, shape=(3, 8))
    t = P.Standardize().fit(x[:, :, ::2].astype(np.float64))
    assert t.transform(x[:, :, ::2]).dtype == np.float32


# --- state: state_dict / load_state_dict / checkpoints ------------------------------------
def test_state_dict_round_trip_applies_the_same_statistics():
    x, ts = fitted()
    xt = data(n=7, shape=(2, 3, 2), seed=9)
    for t in ts:
        sd = t.state_dict()
        assert all(isinstance(v, np.ndarray) and v.dtype != object for v in sd.values())
        fresh = type(t)()
        fresh.load_state_dict(sd)
        assert _hyper(fresh) == _hyper(t), t
        assert np.array_equal(fresh.transform(xt), t.transform(xt)), t
        assert np.array_equal(fresh.inverse_transform(t.transform(xt)), t.inverse_transform(t.transform(xt)))
        sd["mean"][...] = 0  # the state is a copy
        assert not np.array_equal(t.state_dict()["mean"], sd["mean"]) or not t.mean_.any()


def test_saved_with_a_model_checkpoint(tmp_path):
    x, ts = fitted()
    model = fastnn.Sequential(fastnn.Flatten(), fastnn.Linear(12, 3, rng=np.random.default_rng(0)))
    extras = {f"pre{i}": t for i, t in enumerate(ts)}
    path = tmp_path / "ck.npz"
    fastnn.save(path, model, epoch=3, **extras)
    with np.load(path, allow_pickle=False) as z:  # a plain .npz, no pickle
        assert any(k.startswith("extra/pre4/") for k in z.files)
    restored = {k: type(t)() for k, t in extras.items()}
    model2 = fastnn.Sequential(fastnn.Flatten(), fastnn.Linear(12, 3))
    out = fastnn.load(path, model2, **restored)
    assert out["epoch"] == 3
    xt = data(n=5, shape=(2, 3, 2), seed=3)
    for k, t in extras.items():
        assert np.array_equal(restored[k].transform(xt), t.transform(xt)), k
    # Loaded without an object: the state dict comes back and loads later.
    sd = fastnn.load(path)["pre6"]
    z = P.ZCAWhiten()
    z.load_state_dict(sd)
    assert np.array_equal(z.transform(xt), ts[6].transform(xt))
    with pytest.raises(ValueError, match="pre0"):  # a Standardize state into a MeanImage
        fastnn.load(path, pre0=P.MeanImage())


def test_bad_states_raise_and_leave_the_object_unchanged():
    x, ts = fitted()
    std, pca = ts[0], ts[5]
    t = P.Standardize(eps=0.5)
    with pytest.raises(ValueError, match="kind"):
        t.load_state_dict(P.MeanImage().fit(x).state_dict() | {"std": std.std_, "eps": np.array(1.0)})
    sd = std.state_dict()
    sd["std"] = sd["std"][..., :1]
    with pytest.raises(ValueError, match="std"):
        t.load_state_dict(sd)
    with pytest.raises(ValueError, match="missing"):
        t.load_state_dict({"kind": np.array("Standardize")})
    with pytest.raises(TypeError, match="mapping"):
        t.load_state_dict([1, 2])
    assert t.eps == 0.5 and not t.fitted
    sd = pca.state_dict()
    sd["explained_variance"] = sd["explained_variance"][:2]
    with pytest.raises(ValueError, match="explained_variance"):
        P.PCAWhiten(5).load_state_dict(sd)


# --- errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [P.Standardize, P.MeanImage, P.ChannelMean, P.PCAWhiten, P.ZCAWhiten])
def test_use_before_fit_is_a_clear_error(cls):
    x = data(n=4, shape=(3, 2))
    for call in (lambda t: t.transform(x), lambda t: t.inverse_transform(x), lambda t: t.state_dict()):
        with pytest.raises(P.NotFittedError, match="not fitted; call fit"):
            call(cls())
    with pytest.raises(ValueError):  # NotFittedError is a ValueError (and a RuntimeError)
        cls().transform(x)


@pytest.mark.parametrize("cls", [P.Standardize, P.MeanImage, P.PCAWhiten, P.ZCAWhiten])
def test_feature_shape_mismatch_is_a_clear_error(cls):
    t = cls().fit(data(n=30, shape=(3, 4)))
    with pytest.raises(ValueError, match=r"fitted on features of shape \(3, 4\).*\(5, 4, 3\)"):
        t.transform(data(n=5, shape=(4, 3)))
    with pytest.raises(ValueError, match="x"):
        t.transform(np.zeros(4, np.float32))  # no batch axis
    with pytest.raises(ValueError, match="3 channels|fitted"):
        P.ChannelMean().fit(data(n=10, shape=(3, 4))).transform(data(n=2, shape=(2, 4)))


def test_bad_arguments():
    x = data(n=10, shape=(6,))
    with pytest.raises(ValueError, match="eps"):
        P.Standardize(eps=0)
    with pytest.raises(ValueError, match="eps"):
        P.ZCAWhiten(eps=-1)
    with pytest.raises(ValueError, match="n_components"):
        P.PCAWhiten(n_components=0)
    with pytest.raises(ValueError, match="n_components.*at most 6"):
        P.PCAWhiten(n_components=7).fit(x)
    with pytest.raises(ValueError, match=r"PCAWhiten.*\(None, 3\)|shape"):
        P.PCAWhiten(3).fit(x).inverse_transform(np.zeros((2, 4), np.float32))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x"):
        P.Standardize().fit(bad)
    with pytest.raises(ValueError, match="at least one sample"):
        P.MeanImage().fit(x[:0])
    with pytest.raises(TypeError):
        P.MeanImage().fit("not an array")
