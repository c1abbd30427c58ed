"""The retrieval-plan arrow syntax."""

from __future__ import annotations

import pytest

from mmrag.errors import ConfigError
from mmrag.store.plan import parse_plan

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "canonical", "limits"),
    [
        ("dense@10", "dense@10", [10]),
        ("global@200->full@10", "global@200 -> full@10", [200, 10]),
        (
            " global @ 200 -> rows@50 ->  full@10 ",
            "global@200 -> rows@50 -> full@10",
            [200, 50, 10],
        ),
        ("muvera@100 -> full@10", "muvera@100 -> full@10", [100, 10]),
        ("(dense@50 + text@50) -> full@10", "(dense@50 + text@50) -> full@10", [50, 10]),
    ],
)
def test_plans_parse_and_print_canonically(text, canonical, limits):
    plan = parse_plan(text)
    assert str(plan) == canonical
    assert [s.limit for s in plan.stages] == limits
    assert parse_plan(str(plan)) == plan


def test_plan_lists_vectors_in_use_order():
    plan = parse_plan("(dense@50 + text@40) -> full@10")
    assert plan.vectors == ("dense", "text", "full")
    assert plan.limit == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot be empty"),
        ("global", "NAME@K"),
        ("global@ten", "NAME@K"),
        ("pixels@10", "unknown stage 'pixels'; allowed: vectors dense, global"),
        ("global@0", "at least 1"),
        ("global@10 -> full@20", "only narrow"),
        ("(dense@10) -> full@5", "two or more"),
    ],
)
def test_bad_plans_name_the_problem(text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_plan(text)


def test_rerank_stages_follow_the_store_stages():
    plan = parse_plan("global@200 -> full@20 -> text_rerank@10 -> rerank@5")
    assert [str(s) for s in plan.stages] == ["global@200", "full@20"]
    assert [str(s) for s in plan.rerank] == ["text_rerank@10", "rerank@5"]
    assert plan.vectors == ("global", "full")  # the store reads vectors only
    assert (plan.limit, plan.search_limit) == (5, 20)
    assert str(plan) == "global@200 -> full@20 -> text_rerank@10 -> rerank@5"
    assert parse_plan(str(plan)) == plan
    assert str(plan.store_plan) == "global@200 -> full@20"
    assert plan.store_plan.rerank == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("text_rerank@10", "starts with a search stage"),
        ("full@20 -> text_rerank@10 -> full@5", "after a rerank stage"),
        ("(full@20 + text_rerank@20) -> full@10", "cannot be fused"),
        ("full@10 -> text_rerank@20", "keeps more candidates"),
        ("full@10 -> cross@5", "unknown stage 'cross'"),
    ],
)
def test_bad_rerank_stages_name_the_problem(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_plan(text)
