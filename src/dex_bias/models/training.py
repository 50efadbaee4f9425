"""Training a DEX model on face crops: targets, augmentation, early stopping, seeded.

Loss (both heads, each where the model has it):

- **age**: categorical cross-entropy of the 101-way softmax against a *Gaussian label
  distribution* centred on the true age with standard deviation ``label_sigma`` years
  (Gao et al., "Deep Label Distribution Learning with Label Ambiguity", IEEE TIP 2017).
  Why not DEX's one-hot target: with a few hundred or a few thousand faces most of the 101
  bins see few examples, and a one-hot target trains each bin alone, so that neighbouring
  ages do not share evidence; the Gaussian target says that a 31-year-old face looks like a
  30- or 32-year-old one, which lowers MAE and smooths the softmax that the expected age
  averages over. ``label_sigma: 0`` gives DEX's one-hot target.
- **gender**: categorical cross-entropy on the two-way softmax (column 1 = female).

Augmentation (training rows only): horizontal flip, and a random shift of up to
``max_shift`` of the crop side (edge pixels replicated), drawn from the seeded TensorFlow
random generator. Early stopping watches the validation MAE of the expected age on a seeded
slice of the training split and restores the best epoch's weights.

Everything random is seeded through ``keras.utils.set_random_seed(seed)`` and the seeded
validation split; with ``deterministic_ops`` TensorFlow's op determinism is switched on too, so
the same inputs give the same weights.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dex_bias.models.spec import AGE_OUTPUT, AGES, GENDER_OUTPUT, ModelSpec, expected_age, output_index, spec_for
from dex_bias.models.weights import model_card, set_model_card
from dex_bias.schema import settings_dataclass

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)


@settings_dataclass
class TrainingSettings:
    """What decides a training run (all recorded in the model's card): the fitting keys of
    ``params:train`` (conf/base/parameters_train.yml).

    epochs : maximum epochs (0: no training, the model is kept as loaded).
    batch_size : faces per gradient step.
    learning_rate : Adam's step size.
    validation_fraction : share of the training split held out for early stopping (seeded).
    patience : epochs without a better validation MAE before stopping.
    label_sigma : standard deviation (years) of the Gaussian age target; 0 = one-hot.
    gender_loss_weight : weight of the gender loss beside the age loss (1).
    flip : random horizontal flips.
    max_shift : largest random shift, as a fraction of the crop side.
    frozen_layers : ``0`` trains everything; ``n`` freezes the first n layers; ``"backbone"``
        freezes every layer but the two heads (transfer learning from a weights file).
    seed : the seed of every random draw.
    deterministic_ops : switch on TensorFlow op determinism (same weights on a re-run).
    """

    epochs: int
    batch_size: int
    learning_rate: float
    validation_fraction: float
    patience: int
    label_sigma: float
    gender_loss_weight: float
    flip: bool
    max_shift: float
    frozen_layers: int | str
    seed: int
    deterministic_ops: bool

    def recorded(self) -> dict[str, Any]:
        """These settings as the model's card records them (a subclass's own fields left out)."""
        return {f.name: getattr(self, f.name) for f in fields(TrainingSettings)}


def age_label_distribution(ages: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian label distributions ``(N, 101)`` over ages 0..100 centred on ``ages`` (clipped to 0..100).

    ``sigma`` in years; ``sigma <= 0`` gives one-hot rows. Rows sum to 1.
    """
    centres = np.clip(np.rint(np.asarray(ages, dtype=float)), 0, AGES[-1])
    if sigma <= 0:
        targets = np.zeros((centres.size, AGES.size), dtype=np.float32)
        targets[np.arange(centres.size), centres.astype(int)] = 1.0
        return targets
    distance = AGES[None, :] - centres[:, None]
    weights = np.exp(-0.5 * (distance / sigma) ** 2)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def validation_split(n_rows: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(train_positions, validation_positions)`` of ``n_rows`` rows (validation ≥ 1 row when fraction > 0)."""
    order = np.random.default_rng(seed).permutation(n_rows)
    n_validation = int(round(fraction * n_rows))
    if fraction > 0:
        n_validation = min(max(n_validation, 1), n_rows - 1)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def freeze_layers(model, frozen_layers: int | str) -> int:
    """Freeze the first ``frozen_layers`` layers (or ``"backbone"``: all but the heads); return how many."""
    keras_layers = model.layers
    if frozen_layers == "backbone":
        heads = {AGE_OUTPUT, GENDER_OUTPUT, "predictions"}
        count = next((i for i, layer in enumerate(keras_layers) if layer.name in heads), len(keras_layers))
    elif isinstance(frozen_layers, (int, np.integer)) and frozen_layers >= 0:
        count = min(int(frozen_layers), len(keras_layers))
    else:
        raise ValueError(f"frozen_layers must be a count ≥ 0 or 'backbone', not {frozen_layers!r}")
    for position, layer in enumerate(keras_layers):
        layer.trainable = position >= count
    return count


class AgeMeanAbsoluteError:
    """Keras metric factory: MAE (years) of the expected age against the target's modal age."""

    def __new__(cls, name: str = "mae"):
        import keras
        from keras import ops

        ages = ops.convert_to_tensor(AGES.astype("float32"))

        def age_mae(y_true, y_pred):
            true_age = ops.cast(ops.argmax(y_true, axis=-1), "float32")
            return ops.abs(ops.sum(y_pred * ages, axis=-1) - true_age)

        return keras.metrics.MeanMetricWrapper(age_mae, name=name)


def _augmenter(size: int, flip: bool, max_shift: float, seed: int):
    import tensorflow as tf

    pad = int(round(max_shift * size))
    generator = tf.random.Generator.from_seed(seed)

    def augment(images):
        if flip:
            flips = generator.uniform([tf.shape(images)[0], 1, 1, 1]) < 0.5
            images = tf.where(flips, tf.reverse(images, axis=[2]), images)
        if pad > 0:
            padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
            offsets = generator.uniform([2], 0, 2 * pad + 1, dtype=tf.int32)
            images = padded[:, offsets[0] : offsets[0] + size, offsets[1] : offsets[1] + size, :]
        return images

    return augment


class _EpochLog:
    """Keras callback: one INFO line per epoch (the progress display in Kedro's log)."""

    def __new__(cls, total_epochs: int):
        import keras

        class EpochLog(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self._started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                shown = ", ".join(
                    f"{_HISTORY_NAMES.get(k.removeprefix('val_'), k.removeprefix('val_'))}"
                    f"{' (validation)' if k.startswith('val_') else ''} {v:.3f}"
                    for k, v in sorted(logs.items())
                    if k in ("loss", "val_loss") or k.endswith("mae") or k.endswith("accuracy")
                )
                logger.info(
                    "epoch %d/%d (%.1f s): %s", epoch + 1, total_epochs, time.perf_counter() - self._started, shown
                )

        return EpochLog()


_HISTORY_NAMES = {
    "pred_age_mae": "age_mae",
    "pred_age_loss": "age_loss",
    "pred_gender_loss": "gender_loss",
    "pred_gender_accuracy": "gender_accuracy",
}


def history_table(history: dict[str, list[float]]) -> pd.DataFrame:
    """Keras history -> one row per epoch.

    Columns: ``epoch`` (1-based), ``loss``, ``val_loss``, ``age_mae``, ``val_age_mae``, ...
    """
    columns = {}
    for key, values in history.items():
        prefix = "val_" if key.startswith("val_") else ""
        bare = key[len(prefix) :]
        name = _HISTORY_NAMES.get(bare, "age_mae" if bare == "mae" else bare)
        columns[prefix + name] = [float(v) for v in values]
    table = pd.DataFrame(columns)
    table.insert(0, "epoch", np.arange(1, len(table) + 1))
    ordered = ["epoch", "loss", "val_loss", "age_mae", "val_age_mae"]
    return table[[c for c in ordered if c in table] + sorted(c for c in table if c not in ordered)]


@dataclass
class TrainingResult:
    """A trained model, its per-epoch history and a summary of the run."""

    model: Any
    history: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def training_crops(
    training_faces: pd.DataFrame, spec: ModelSpec, *, batch_size: int, padding: str, workers: int
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Cut each face's crop at the model's input size: ``(rows, crops, unreadable)``.

    ``rows``: the faces whose image could be read, in order, one per crop (``(N, S, S, 3)``
    uint8 RGB); ``unreadable``: ``"<image_id> (<why>)"`` for each face left out.
    """
    from dex_bias.faces import iter_crop_batches

    unreadable: list[str] = []
    kept_rows, crop_batches = [], []
    for rows, crops in iter_crop_batches(
        training_faces,
        spec.input_size,
        batch_size,
        padding=padding,
        workers=workers,
        on_error=lambda row, error: unreadable.append(f"{row['image_id']} ({error})"),
    ):
        kept_rows.append(rows)
        crop_batches.append(crops)
    rows = pd.concat(kept_rows) if kept_rows else training_faces.head(0)
    crops = np.concatenate(crop_batches) if crop_batches else np.empty((0, *spec.input_shape), np.uint8)
    return rows, crops, unreadable


def train_dex_model(
    model, crops: np.ndarray, ages: np.ndarray, genders: np.ndarray, settings: TrainingSettings
) -> TrainingResult:
    """Fit ``model`` on RGB ``uint8`` crops ``(N, S, S, 3)`` with true ``ages`` (years) and ``genders`` (0/1).

    Holds out a seeded ``validation_fraction`` for early stopping (best weights restored),
    augments the rest, and returns the model with its history. ``settings.epochs == 0`` returns
    the model untouched with an empty history.
    """
    import keras
    import tensorflow as tf

    spec = spec_for(model)
    crops = spec.check_batch(crops)
    ages = np.asarray(ages, dtype=float)
    genders = np.asarray(genders, dtype=int)
    if not len(crops) == len(ages) == len(genders):
        raise ValueError(f"{len(crops)} crops, {len(ages)} ages and {len(genders)} genders: give one of each per face")
    keras.utils.set_random_seed(settings.seed)
    if settings.deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    if settings.epochs <= 0:
        return TrainingResult(model, history_table({}), {"epochs_run": 0})
    if len(crops) < 2:
        raise ValueError(f"cannot train on {len(crops)} face(s): need at least 2 (one for validation)")

    frozen = freeze_layers(model, settings.frozen_layers)
    has_gender = output_index(model, GENDER_OUTPUT) is not None and len(model.outputs) > 1
    train_at, validation_at = validation_split(len(crops), settings.validation_fraction, settings.seed)

    def targets(positions):
        age_target = age_label_distribution(ages[positions], settings.label_sigma)
        if not has_gender:
            return age_target
        return {GENDER_OUTPUT: np.eye(2, dtype=np.float32)[genders[positions]], AGE_OUTPUT: age_target}

    augment = _augmenter(spec.input_size, settings.flip, settings.max_shift, settings.seed)

    def dataset(positions, training):
        data = tf.data.Dataset.from_tensor_slices((crops[positions], targets(positions)))
        if training:
            data = data.shuffle(len(positions), seed=settings.seed, reshuffle_each_iteration=True)
        data = data.batch(settings.batch_size)
        if training:
            data = data.map(lambda x, y: (augment(x), y))
        return data.map(lambda x, y: (spec.preprocess_tensor(x), y)).prefetch(2)

    if has_gender:
        loss = {
            AGE_OUTPUT: keras.losses.CategoricalCrossentropy(),
            GENDER_OUTPUT: keras.losses.CategoricalCrossentropy(),
        }
        loss_weights = {AGE_OUTPUT: 1.0, GENDER_OUTPUT: settings.gender_loss_weight}
        metrics = {AGE_OUTPUT: [AgeMeanAbsoluteError("mae")], GENDER_OUTPUT: ["accuracy"]}
    else:
        loss, loss_weights, metrics = keras.losses.CategoricalCrossentropy(), None, [AgeMeanAbsoluteError("mae")]
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate), loss=loss, loss_weights=loss_weights, metrics=metrics
    )
    monitor = "val_pred_age_mae" if has_gender else "val_mae"
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode="min", patience=settings.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode="min", factor=0.5, patience=max(2, settings.patience // 3), min_lr=1e-5
        ),
        _EpochLog(settings.epochs),
    ]
    logger.info(
        "Training %s on %d faces (%d for validation), %d frozen layers, up to %d epochs.",
        model.name,
        len(train_at),
        len(validation_at),
        frozen,
        settings.epochs,
    )
    started = time.perf_counter()
    fitted = model.fit(
        dataset(train_at, True),
        validation_data=dataset(validation_at, False),
        epochs=settings.epochs,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    history = history_table(fitted.history)
    best = int(history["val_age_mae"].idxmin()) if len(history) else -1
    summary = {
        "epochs_run": len(history),
        "best_epoch": best + 1 if best >= 0 else None,
        "best_val_age_mae": float(history["val_age_mae"].min()) if len(history) else None,
        "n_train": int(len(train_at)),
        "n_validation": int(len(validation_at)),
        "frozen_layers": frozen,
        "training_seconds": round(seconds, 1),
        "settings": settings.recorded(),
    }
    logger.info(
        "Trained %s in %.1f s: %d epochs, best validation MAE %.2f years at epoch %s.",
        model.name,
        seconds,
        summary["epochs_run"],
        summary["best_val_age_mae"] or float("nan"),
        summary["best_epoch"],
    )
    # Leave the model ready for plain inference: uncompiled state is not needed downstream.
    for layer in model.layers:
        layer.trainable = True
    return TrainingResult(model, history, summary)


def record_training(
    starting_model, result: TrainingResult, splits: Sequence[str], n_faces: int, n_unreadable: int
) -> None:
    """Write what training did into the trained model's card (the starting model's card, plus
    ``trained_splits``, the run's ``training`` summary, ``n_training_faces``, ``n_unreadable``).

    A model trained here (any epoch run) learnt UTKFace's gender codes, so its female column is 1;
    one kept as loaded (no epoch) keeps its own card's and has no trained split.
    """
    card = model_card(starting_model)
    trained = bool(result.summary.get("epochs_run", 0))
    if trained:
        card["female_column"] = 1
    card.update(
        {
            "trained_splits": list(splits) if trained else [],
            "training": result.summary,
            "n_training_faces": int(n_faces),
            "n_unreadable": n_unreadable,
        }
    )
    set_model_card(result.model, card)


def learning_curve_figure(training_history: pd.DataFrame) -> Figure:
    """Loss and expected-age MAE per epoch, training beside validation (the early-stopping signal);
    a figure that says so when no epoch was run."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.6), layout="constrained")
    loss_axes, mae_axes = figure.subplots(1, 2)
    if training_history.empty:
        for axes in (loss_axes, mae_axes):
            axes.text(0.5, 0.5, "no training epochs\n(model used as loaded)", ha="center", va="center")
            axes.set_axis_off()
        return figure
    epochs = training_history["epoch"]
    for axes, column, label in (
        (loss_axes, "loss", "loss (cross-entropy, both heads)"),
        (mae_axes, "age_mae", "MAE of the expected age (years)"),
    ):
        if column in training_history:
            axes.plot(epochs, training_history[column], marker="o", markersize=3, label="training")
        if f"val_{column}" in training_history:
            axes.plot(epochs, training_history[f"val_{column}"], marker="o", markersize=3, label="validation")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    if "val_age_mae" in training_history:
        best = training_history.loc[training_history["val_age_mae"].idxmin()]
        mae_axes.axvline(best["epoch"], color="grey", linestyle="--", linewidth=1)
        mae_axes.set_title(
            f"best validation MAE {best['val_age_mae']:.2f} at epoch {int(best['epoch'])} (kept)", fontsize=9
        )
    return figure


def mean_absolute_error(true_age: np.ndarray, age_probs: np.ndarray) -> float:
    """MAE (years) of the expected age of ``(N, 101)`` probabilities against true ages."""
    return float(np.mean(np.abs(expected_age(age_probs) - np.asarray(true_age, dtype=float))))
