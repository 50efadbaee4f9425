import os
import subprocess
import sys

import numpy as np
import pytest
from lime import lime_image

from dex_bias.explain.lime_regions import (
    compact_segments,
    explain_images,
    hide_image,
    image_seed,
    positive_pixel_shares,
    region_weights,
    sample_masks,
)
from dex_bias.explain.regions import N_REGIONS, REGION_INDEX, region_map
from tests.conftest import base_settings
from tests.explain.conftest import crop_landmarks

SIZE = 64


def _texture_model(seed=7):
    """A deterministic, nonlinear 'expected age' of uint8 RGB batches, (B,) years."""
    w = np.random.default_rng(seed).normal(size=(SIZE, SIZE, 3))

    def age(batch):
        x = batch.astype(np.float64) / 255.0
        return 35.0 + 25.0 * np.tanh((x * w).sum(axis=(1, 2, 3)) / 40.0)

    return age


def _face_images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(n)]


def _lime_reference(image, segments, age, seed, hide_color, num_samples):
    explainer = lime_image.LimeImageExplainer(random_state=seed)
    explanation = explainer.explain_instance(
        image,
        lambda batch: age(batch)[:, None],
        labels=(0,),
        top_labels=None,
        hide_color=hide_color,
        num_samples=num_samples,
        segmentation_fn=lambda _: segments,
        random_seed=0,
    )
    weights = np.zeros(len(np.unique(segments)))
    for feature, weight in explanation.local_exp[0]:
        weights[feature] = weight
    return weights, explanation.intercept[0], explanation.score


@pytest.mark.parametrize("hide, hide_color", [("mean", None), ("zero", 0)])
def test_attributions_equal_lime_image_on_the_same_draws(hide, hide_color):
    age = _texture_model()
    images = _face_images(3)
    # Three faces, the last shifted so that its chin and bottom band leave the crop (empty regions).
    maps = [region_map(crop_landmarks(SIZE, shift=s), SIZE) for s in [(0, 0), (0.05, 0.02), (0, 0.55)]]
    seeds = [11, 22, 33]
    # batch_size 128 does not divide 300: model batches mix the samples of consecutive images.
    settings = base_settings("explain.lime", num_samples=300, hide=hide, batch_size=128)
    ours = list(explain_images(zip("abc", images, maps, seeds), age, settings))
    assert [e.key for e in ours] == list("abc")
    for explanation, image, labels, seed in zip(ours, images, maps, seeds):
        present, compact = compact_segments(labels)
        weights, intercept, score = _lime_reference(image, compact, age, seed, hide_color, 300)
        np.testing.assert_allclose(explanation.weights, weights, atol=1e-6, rtol=0)
        assert abs(explanation.intercept - intercept) < 1e-6
        assert abs(explanation.score - score) < 1e-6
        assert explanation.model_age == pytest.approx(age(image[None])[0])
    assert len(ours[2].present) < N_REGIONS  # the shifted face really had empty regions


def test_empty_regions_get_weight_zero_and_a_flag():
    age = _texture_model()
    labels = region_map(crop_landmarks(SIZE, shift=(0, 0.55)), SIZE)
    (explanation,) = explain_images(
        [("x", _face_images(1)[0], labels, 5)], age, base_settings("explain.lime", num_samples=200)
    )
    weights, empty = region_weights(explanation, N_REGIONS)
    assert empty[REGION_INDEX["chin"]] and weights[REGION_INDEX["chin"]] == 0.0
    assert not empty[REGION_INDEX["nose"]]
    assert np.isfinite(weights).all() and (weights[~empty] != 0).any()


def test_same_seed_same_weights_other_image_other_draws():
    age = _texture_model()
    image = _face_images(1)[0]
    labels = region_map(crop_landmarks(SIZE), SIZE)
    settings = base_settings("explain.lime", num_samples=200)

    def run(run_seed, image_id):
        (e,) = explain_images([(image_id, image, labels, image_seed(run_seed, image_id))], age, settings)
        return e.weights

    np.testing.assert_array_equal(run(1, "a.jpg"), run(1, "a.jpg"))
    assert not np.allclose(run(1, "a.jpg"), run(1, "b.jpg"))
    assert not np.allclose(run(1, "a.jpg"), run(2, "a.jpg"))
    assert image_seed(1, "a.jpg") != image_seed(1, "b.jpg")
    masks = sample_masks(14, 50, image_seed(1, "a.jpg"))
    assert masks[0].all() and not np.array_equal(masks, sample_masks(14, 50, image_seed(1, "b.jpg")))


def test_image_seed_does_not_depend_on_the_process_hash_salt():
    code = "from dex_bias.explain.lime_regions import image_seed; print(image_seed(3, '1_0_0_x.jpg'))"
    salt = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    other_process = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONHASHSEED=salt),
    ).stdout.strip()
    assert other_process == str(image_seed(3, "1_0_0_x.jpg"))
    assert hash("1_0_0_x.jpg") != int(
        subprocess.run(
            [sys.executable, "-c", "print(hash('1_0_0_x.jpg'))"],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, PYTHONHASHSEED=salt),
        ).stdout
    )  # hash() would not have been stable


@pytest.mark.parametrize("hide", ["mean", "zero", "blur"])
def test_a_model_that_looks_only_at_the_nose_is_explained_by_the_nose(hide):
    labels = region_map(crop_landmarks(SIZE), SIZE)
    nose = labels == REGION_INDEX["nose"]
    image = _face_images(1, seed=3)[0]

    def nose_texture_age(batch):
        # Age from the contrast of the nose pixels only: any hide mode removes it.
        return 20.0 + 0.5 * batch[:, nose].astype(np.float64).std(axis=(1, 2))

    (e,) = explain_images(
        [("n", image, labels, 9)], nose_texture_age, base_settings("explain.lime", num_samples=400, hide=hide)
    )
    weights, _ = region_weights(e, N_REGIONS)
    assert np.argmax(np.abs(weights)) == REGION_INDEX["nose"]
    assert weights[REGION_INDEX["nose"]] > 5 * np.delete(np.abs(weights), REGION_INDEX["nose"]).max()


def test_hide_mean_is_the_truncated_segment_mean():
    image = np.array([[[0, 1, 2], [1, 2, 4]], [[9, 9, 9], [10, 10, 10]]], dtype=np.uint8)
    segments = np.array([[0, 0], [1, 1]])
    hidden = hide_image(image, segments, "mean")
    np.testing.assert_array_equal(hidden[0, 0], [0, 1, 3])  # means 0.5, 1.5, 3.0 truncated
    np.testing.assert_array_equal(hidden[1, 1], [9, 9, 9])


def test_positive_pixel_shares_against_a_direct_count():
    rng = np.random.default_rng(4)
    segments = rng.integers(0, 6, (20, 20))
    regions = rng.integers(0, N_REGIONS - 1, (20, 20))  # background left empty on purpose
    weights = np.array([0.5, -1.0, 2.0, 0.0, -0.1, 0.3])
    activation, share, empty = positive_pixel_shares(weights, segments, regions, N_REGIONS)
    positive = weights[segments] > 0
    for r in range(N_REGIONS - 1):
        inside = regions == r
        assert activation[r] == pytest.approx(positive[inside].mean())
        assert share[r] == pytest.approx((positive & inside).sum() / positive.sum())
    assert empty[-1] and activation[-1] == 0.0 and not empty[:-1].any()
    top1, _, _ = positive_pixel_shares(weights, segments, regions, N_REGIONS, top_k=1)
    assert top1.sum() < activation.sum()


def test_background_batching_matches_sequential_and_reports_errors():
    from dex_bias.explain.lime_regions import MaskedJob, predict_masked

    age = _texture_model()
    labels = compact_segments(region_map(crop_landmarks(SIZE), SIZE))[1]

    def jobs(fail_at=None):
        for i, image in enumerate(_face_images(4)):
            if i == fail_at:
                raise ValueError("cannot read image 2")
            yield MaskedJob(i, image, hide_image(image, labels), labels, sample_masks(labels.max() + 1, 70 + i, i))

    background = [job.ages for job in predict_masked(jobs(), age, 64, prefetch=True)]
    sequential = [job.ages for job in predict_masked(jobs(), age, 64, prefetch=False)]
    assert [len(a) for a in background] == [70, 71, 72, 73]
    for a, b in zip(background, sequential):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="cannot read image 2"):
        list(predict_masked(jobs(fail_at=2), age, 64))


def _class_model(classes=7, seed=9):
    """Deterministic class probabilities (B, classes) of uint8 RGB batches."""
    w = np.random.default_rng(seed).normal(size=(classes, SIZE, SIZE, 3))

    def probabilities(batch):
        x = batch.astype(np.float64) / 255.0
        logits = np.einsum("bhwc,khwc->bk", x, w) / 60.0
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return probabilities


def test_the_articles_target_equals_lime_image_explaining_its_top_label():
    # The article: lime_image with top_labels=1, hide_color=0, 100 samples, forward selection.
    probabilities = _class_model()
    images = _face_images(3, seed=4)
    maps = [region_map(crop_landmarks(SIZE, shift=s), SIZE) for s in [(0, 0), (0.04, 0.0), (0.0, 0.05)]]
    seeds = [5, 6, 7]
    settings = base_settings(
        "explain.lime",
        num_samples=100,
        hide="zero",
        feature_selection="forward_selection",
        target="top_class_probability",
        batch_size=64,
    )
    ours = list(explain_images(zip("abc", images, maps, seeds), probabilities, settings))
    for explanation, image, labels, seed in zip(ours, images, maps, seeds):
        present, compact = compact_segments(labels)
        explainer = lime_image.LimeImageExplainer(random_state=seed, feature_selection="forward_selection")
        reference = explainer.explain_instance(
            image,
            probabilities,
            top_labels=1,
            hide_color=0,
            num_samples=100,
            segmentation_fn=lambda _, segments=compact: segments,
            random_seed=0,
        )
        top = reference.top_labels[0]
        assert explanation.context["target_class"] == top == int(np.argmax(probabilities(image[None])[0]))
        weights = np.zeros(len(present))
        for feature, weight in reference.local_exp[top]:
            weights[feature] = weight
        np.testing.assert_allclose(explanation.weights, weights, atol=1e-9, rtol=0)
        assert explanation.model_age == pytest.approx(probabilities(image[None])[0, top])
