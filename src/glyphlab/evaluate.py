"""Predictions → metrics and figures, the same code for every model family.

Metrics come from ``sklearn.metrics``; figures are drawn with matplotlib (Agg backend) and
label their axes with the class characters when a font covers them all, else with readable
Unicode names (``ᚠ`` → ``fehu``), so a font without runes never draws empty boxes.
"""
from __future__ import annotations

import unicodedata

import numpy as np


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], prefix: str) -> dict:
    """``<prefix>/accuracy``, ``<prefix>/macro_f1``, ``<prefix>/n_classes_present`` and
    ``<prefix>/class_accuracy/<i>_<name>`` (recall per class).

    Macro F1 averages over the classes present in ``y_true`` only: a class the evaluated labels do not
    hold has no F1 (0 true positives of 0), and counting it as 0 would make a 98 % accurate model on 2 of
    5 classes score 0.4. Predictions of absent classes still count against the present ones' precision
    and recall. Which classes are absent: :func:`absent_classes`.

    y_true, y_pred: int ``[N]`` class indices into ``classes``, or ``[N, P]`` for position-wise
    labels (see :func:`sequence_metrics`).
    """
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    if np.ndim(y_true) == 2:
        return sequence_metrics(y_true, y_pred, classes, prefix)

    present = np.unique(y_true)
    out = {f"{prefix}/accuracy": float(accuracy_score(y_true, y_pred)),
           f"{prefix}/macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
           f"{prefix}/n_classes_present": len(present)}
    recalls = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    for c, r in zip(present, recalls):
        out[f"{prefix}/class_accuracy/{c:03d}_{metric_safe(classes[c])}"] = float(r)
    return out


def absent_classes(y_true: np.ndarray, classes: list[str]) -> list[str]:
    """The names of the ``classes`` that ``y_true`` (int ``[N]`` or ``[N, P]``) holds no sample of."""
    present = set(np.unique(y_true).tolist())
    return [name for c, name in enumerate(classes) if c not in present]


def note_absent_classes(y_true: np.ndarray, classes: list[str], prefix: str, what: str) -> str | None:
    """Say which classes ``y_true`` lacks, when any: the run's tag ``<prefix>/absent_classes`` (their
    names, space-separated) and one line for the console, returned (None when every class is there)."""
    import mlflow

    absent = absent_classes(y_true, classes)
    if not absent:
        return None
    names = " ".join(absent)
    mlflow.set_tag(f"{prefix}/absent_classes", names if len(names) <= 4000 else names[:4000] + " …")
    shown = " ".join(absent[:30]) + (f" … (+{len(absent) - 30})" if len(absent) > 30 else "")
    return (f"{what} holds {len(classes) - len(absent)} of the model's {len(classes)} classes; "
            f"{prefix}/macro_f1 is over those; absent: {shown}")


def sequence_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], prefix: str) -> dict:
    """Metrics of position-wise labels, y_true and y_pred int ``[N, P]``.

    ``<prefix>/accuracy``: whole sequences, every position right (the strict number the
    multi-digit articles report); ``<prefix>/digit_accuracy``: all N·P positions pooled, blanks
    included (the articles' "per digit"); ``<prefix>/position_accuracy/<k>`` for position
    k = 1..P; ``<prefix>/length_accuracy``: the number of non-blank positions is right (when
    ``classes`` has the blank class ``"_"``). ``macro_f1`` and ``class_accuracy/*`` are over
    the positions pooled.
    """
    from glyphlab.data.sequences import BLANK

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    correct = y_true == y_pred                                          # bool [N, P]
    out = classification_metrics(y_true.ravel(), y_pred.ravel(), classes, prefix)
    out[f"{prefix}/accuracy"] = float(correct.all(axis=1).mean())
    out[f"{prefix}/digit_accuracy"] = float(correct.mean())
    for k, acc in enumerate(correct.mean(axis=0), start=1):
        out[f"{prefix}/position_accuracy/{k}"] = float(acc)
    if BLANK in classes:
        blank = classes.index(BLANK)
        out[f"{prefix}/length_accuracy"] = float(np.mean((y_true != blank).sum(1) == (y_pred != blank).sum(1)))
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """int64 ``[n_classes, n_classes]``: rows are true classes, columns predicted.

    Position-wise labels ``[N, P]`` are pooled over the positions (the counts sum to N·P).
    """
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(np.ravel(y_true), np.ravel(y_pred), labels=np.arange(n_classes))


def readable_name(char: str) -> str:
    """A short ASCII name for a class: the name itself when ASCII, else from its Unicode name."""
    if char.isascii():
        return char
    try:
        words = unicodedata.name(char[0]).split()
    except (ValueError, IndexError):
        return char.encode("unicode_escape").decode()
    tail = words[words.index("LETTER") + 1:] if "LETTER" in words else words
    short = " ".join(tail[:2] if tail[:1] == ["SMALL"] else tail[:1])  # "fehu", "small a"
    return (short if len(char) == 1 else f"{short}+{len(char) - 1}").lower()


def metric_safe(name: str) -> str:
    """MLflow metric keys allow only alphanumerics, '_-./ ' and spaces: name non-ASCII classes."""
    safe = readable_name(name) if not name.isascii() else name
    return "".join(ch if ch.isalnum() or ch in "_-. " else "_" for ch in safe)


def tick_labels(classes: list[str]):
    """(labels, FontProperties or None) for drawing ``classes`` on a figure."""
    from matplotlib.font_manager import FontProperties

    from glyphlab.data.font_images import font_for

    path = font_for("".join(classes))
    if path is not None:
        # the font by family name with matplotlib's default after it: a caption's "(", digits or "%" that
        # a script font lacks come from the fallback instead of a missing-glyph warning
        from matplotlib import font_manager

        font_manager.fontManager.addfont(path)
        return list(classes), FontProperties(family=[FontProperties(fname=path).get_name(), "DejaVu Sans"])
    return [readable_name(c) for c in classes], None


def save_confusion(cm: np.ndarray, classes: list[str], png_path, csv_path, title: str = "") -> None:
    """Write the confusion matrix as CSV (header = class names) and as a labelled heat map."""
    import csv

    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["true\\pred", *classes])
        for name, row in zip(classes, cm):
            w.writerow([name, *row.tolist()])

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(classes)
    labels, font = tick_labels(classes)
    side = min(max(6.0, 0.32 * n + 2), 40.0)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    size = max(4, min(11, 300 // max(n, 1)))
    ax.set_xticklabels(labels, fontproperties=font, fontsize=size, rotation=90 if font is None else 0)
    ax.set_yticklabels(labels, fontproperties=font, fontsize=size)
    if n <= 30:  # counts are readable only on small matrices
        limit = cm.max() / 2 if cm.size else 0
        for i, j in zip(*np.nonzero(cm)):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > limit else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def save_image_grid(images: np.ndarray, labels: np.ndarray, classes: list[str], path, n: int = 64,
                    title: str = "", predicted: np.ndarray | None = None) -> None:
    """A grid of up to ``n`` images (uint8 ``[N, H, W]``) captioned with their class.

    labels int ``[N]`` or ``[N, P]`` (a sequence is captioned with its P characters).
    With ``predicted`` (same shape), each caption is the prediction; a wrong one is red,
    with the true label under it in brackets.
    """
    n = min(n, len(images))
    cols = int(np.ceil(np.sqrt(n)))
    _, font = tick_labels(classes)
    cells = [(images[k], *_caption(labels[k], None if predicted is None else predicted[k], classes, font))
             for k in range(n)]
    _draw_mosaic(cells, cols, path, title, font, two_lines=predicted is not None)


def save_eval_samples(train_images: np.ndarray, train_labels: np.ndarray, eval_images: np.ndarray,
                      eval_true: np.ndarray, eval_pred: np.ndarray, classes: list[str], path,
                      n_classes: int = 10, per_side: int = 8, title: str = "", seed: int = 0) -> list[int]:
    """Why transfer fails, in one picture: for the ``n_classes`` classes read worst on the eval
    set, one row each — ``per_side`` training images of the class (left) beside ``per_side`` eval
    images of it (right), the misread ones first, captioned in red with what they were read as.

    train_images / eval_images uint8 ``[N, H, W]`` (as the model saw them); train_labels,
    eval_true, eval_pred int ``[N]`` class indices into ``classes``. Position-wise labels
    (``[N, P]``) have no per-class rows: the misread eval samples are drawn first instead.
    Returns the classes drawn, worst first (``[]`` for position-wise labels).
    """
    rng = np.random.default_rng(seed)
    if np.ndim(eval_true) == 2:
        wrong = ~(eval_true == eval_pred).all(axis=1)
        order = np.concatenate([np.flatnonzero(wrong), np.flatnonzero(~wrong)])
        save_image_grid(eval_images[order], eval_true[order], classes, path, title=title, predicted=eval_pred[order])
        return []
    present = np.unique(eval_true)
    recall = np.array([np.mean(eval_pred[eval_true == c] == c) for c in present])
    worst = present[np.argsort(recall, kind="stable")[:n_classes]]
    _, font = tick_labels(classes)
    cells, row_labels = [], []
    for c in worst:
        mine = np.flatnonzero(train_labels == c)
        shown = rng.permutation(mine)[:per_side]
        cells += [(train_images[k], *_caption(c, None, classes, font)) for k in shown]
        cells += [None] * (per_side - len(shown) + 1)              # a blank column between the two sides
        of_class = np.flatnonzero(eval_true == c)
        misread = rng.permutation(of_class[eval_pred[of_class] != c])
        right = rng.permutation(of_class[eval_pred[of_class] == c])
        cells += [(eval_images[k], *_caption(c, eval_pred[k], classes, font))
                  for k in np.concatenate([misread, right])[:per_side]]
        cells += [None] * (per_side - min(per_side, len(of_class)))
        row_labels.append(f"{_caption(c, None, classes, font)[0]}  {np.mean(eval_pred[of_class] == c):.0%}")
    _draw_mosaic(cells, 2 * per_side + 1, path, title, font, two_lines=True, row_labels=row_labels)
    return worst.tolist()


def _caption(label, predicted, classes: list[str], font) -> tuple[str, str]:
    """(text, colour) under which an image is shown: its label, or its prediction when given —
    red with the true label in brackets when wrong."""
    names = classes if font else tick_labels(classes)[0]
    text = "".join(names[c] for c in np.atleast_1d(label))
    if predicted is not None and not np.array_equal(predicted, label):
        return f"{''.join(names[c] for c in np.atleast_1d(predicted))}\n({text})", "red"
    return text, "black"


def _draw_mosaic(cells: list, cols: int, path, title: str, font, two_lines: bool = False,
                 row_labels: list[str] | None = None) -> None:
    """Draw ``cells`` (``(image uint8 [H, W], caption, colour)`` or None for an empty cell) row by
    row, ``cols`` per row, into one PNG; ``row_labels`` are written left of each row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = [cell[0].shape for cell in cells if cell is not None]
    h, w = shapes[0] if shapes else (8, 8)
    rows = max(1, int(np.ceil(len(cells) / cols)))
    # One mosaic in one axes: a subplot per image costs seconds per figure.
    cell_h = h + int(h * (0.8 if two_lines else 0.45))  # room for the caption above each image
    mosaic = np.full((rows * cell_h, cols * (w + 2)), 255, np.uint8)
    fig, ax = plt.subplots(figsize=(cols * 1.0 + (0.6 if row_labels else 0), rows * cell_h / w * 1.0))
    for k, cell in enumerate(cells):
        if cell is None:
            continue
        image, text, color = cell
        r, c = divmod(k, cols)
        top, left = r * cell_h + (cell_h - h), c * (w + 2)
        mosaic[top:top + h, left:left + w] = 255 - image  # dark ink on white reads like paper
        ax.text(left + w / 2, top - 1, text, ha="center", va="bottom", fontproperties=font, fontsize=8,
                color=color)
    for r, text in enumerate(row_labels or []):
        ax.text(-2, r * cell_h + cell_h - h / 2, text, ha="right", va="center", fontproperties=font, fontsize=10)
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title)
    fig.subplots_adjust(left=0.08 if row_labels else 0.01, right=0.99, bottom=0.01, top=0.95 if title else 0.99)
    fig.savefig(path, dpi=80)
    plt.close(fig)
