"""The ranking benchmark's metrics (``bench/ranking_quality.py``) are the standard ones:
nDCG@10 with linear gains and a log2 discount, the ideal DCG taken from every judged
paper (found or not), unjudged papers gaining nothing, a list shorter than 10 scored
as it is; the figures the issues' targets are read from depend on it."""

import math

import pytest

from bench.ranking_quality import ndcg_at_k, precision, recall_at_k

JUDGED = {"a": 2, "b": 2, "c": 1, "d": 1}


def dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def test_ideal_dcg_counts_the_judged_papers_the_ranking_never_found():
    # Found a, b, c; d (graded 1) is missing: the ideal still holds it.
    assert ndcg_at_k(["a", "b", "c"], JUDGED) == pytest.approx(dcg([2, 2, 1]) / dcg([2, 2, 1, 1]))
    assert ndcg_at_k(["a", "b", "c"], JUDGED) < 1.0


def test_a_short_list_with_every_judged_paper_in_order_is_perfect():
    assert ndcg_at_k(["a", "b", "c", "d"], JUDGED) == pytest.approx(1.0)


def test_unjudged_papers_gain_nothing_and_push_the_judged_ones_down():
    shown = ["a", "x", "b", "c", "d"]
    assert ndcg_at_k(shown, JUDGED) == pytest.approx(dcg([2, 0, 2, 1, 1]) / dcg([2, 2, 1, 1]))


def test_only_the_first_ten_count():
    shown = [f"x{i}" for i in range(10)] + ["a", "b"]
    assert ndcg_at_k(shown, JUDGED) == 0.0
    assert recall_at_k(shown, JUDGED) == 0.0


def test_a_grade_one_above_a_grade_two_costs_less_than_missing_it():
    swapped = ndcg_at_k(["a", "c", "b", "d"], JUDGED)
    missing = ndcg_at_k(["a", "b", "c"], JUDGED)
    assert missing < swapped < 1.0


def test_precision_is_the_judged_share_of_what_is_shown():
    assert precision(["a", "x", "c"], JUDGED) == pytest.approx(2 / 3)
    assert precision([], JUDGED) == 1.0
