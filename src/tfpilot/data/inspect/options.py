"""What ``tfpilot inspect`` checks and how hard: one value object for the API and the CLI.

Example:
    >>> InspectOptions(folds=3, label_issues=False).folds
    3
"""

from __future__ import annotations

from dataclasses import dataclass

#: Largest perceptual-hash distance (of 64 bits) between near-duplicate images.
IMAGE_DISTANCE = 6
#: Least word-bigram Jaccard similarity between near-duplicate texts.
TEXT_SIMILARITY = 0.5


@dataclass(frozen=True)
class InspectOptions:
    """The settings of one inspection.

    Args:
        label_issues: also search label issues with a K-fold model (the slow part).
        folds: K of the K-fold model.
        epochs: epochs of each fold's model.
        model: each fold's model; None: a quick one chosen for the data.
        workers: processes hashing image files; None: the CPUs.
        image_distance: near-duplicate threshold for images (bits of 64).
        text_similarity: near-duplicate threshold for texts (Jaccard of word bigrams).
        shown: findings of each kind drawn on the page.
    """

    label_issues: bool = True
    folds: int = 4
    epochs: int = 4
    model: str | None = None
    workers: int | None = None
    image_distance: int = IMAGE_DISTANCE
    text_similarity: float = TEXT_SIMILARITY
    shown: int = 60
