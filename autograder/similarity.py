"""Written answers too alike to be independent, for a whole class at once.

Each question's answers become TF-IDF vectors of word 1- to 3-grams
(scikit-learn), after the same normalisation the grader applies everywhere
(case, markup, spacing); their cosine similarities come from one sparse matrix
product per block of rows, so a class of 500 takes a second where comparing
every pair in Python took over an hour. Word pairs and triples make the score
about wording, not topic: two answers on the same question share words, a
copied answer shares its phrases. Words common to the whole class weigh less
(the IDF), so the question's own vocabulary does not make answers alike.

Short answers ("Yes.") are alike by chance and never compared.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from tqdm import tqdm

from autograder.answers import normalize

DEFAULT_THRESHOLD = 0.7
MIN_SIMILAR_LENGTH = 40  # characters, after normalisation
_BLOCK_ROWS = 256  # rows of the similarity matrix held at once


def _vectors(texts: list[str]):
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    # One-letter words count too ("a", "I"): they shape a copied phrase.
    words = r"(?u)\b\w+\b"
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 3), sublinear_tf=True, token_pattern=words, dtype=np.float32
    )
    return vectorizer.fit_transform(texts)  # rows are L2-normalised: dot product = cosine


def similarity(first: str, second: str) -> float:
    """How alike two answers are on their own (0..1); in a class, the IDF shifts it a little."""
    a, b = normalize(first), normalize(second)
    if not a or not b:
        return 0.0
    vectors = _vectors([a, b])
    return float((vectors[0] @ vectors[1].T).toarray()[0, 0])


def similar_pairs(
    answers_by_submission: Mapping[str, Mapping[str, str]],
    questions: list[str],
    threshold: float = DEFAULT_THRESHOLD,
    progress: bool = False,
) -> list[tuple[str, str, str, float]]:
    """(submission, submission, question, similarity) for every pair at least `threshold` alike.

    `answers_by_submission` maps a submission to its {question: answer}.
    Sorted most alike first.
    """
    pairs = []
    bar = tqdm(
        total=len(questions),
        unit="question",
        desc="similarity",
        disable=not progress,
        file=sys.stderr,
    )
    for question in questions:
        names, texts = [], []
        for name in sorted(answers_by_submission):
            text = normalize(answers_by_submission[name].get(question, ""))
            if len(text) >= MIN_SIMILAR_LENGTH:
                names.append(name)
                texts.append(text)
        if len(texts) > 1:
            pairs += _pairs_above(_vectors(texts), names, question, threshold)
        bar.update()
    bar.close()
    return sorted(pairs, key=lambda p: (-p[3], p[2], p[0], p[1]))


def _pairs_above(vectors, names: list[str], question: str, threshold: float) -> list:
    import numpy as np

    found = []
    for start in range(0, len(names), _BLOCK_ROWS):
        block = (vectors[start : start + _BLOCK_ROWS] @ vectors.T).toarray()
        rows, columns = np.nonzero(block >= threshold - 1e-6)
        for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
            first = start + row
            if column > first:  # each pair once, never an answer with itself
                score = min(1.0, float(block[row, column]))
                found.append((names[first], names[column], question, score))
    return found
