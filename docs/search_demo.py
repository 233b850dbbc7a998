"""Every searcher of issue #20 on real data: the embedded MiniLM, HateXplain, three race vectors.

Usage (from the repository root; offline, CPU, a few minutes)::

    FAIRMERGE_DATA_DIR=../shared/data PYTHONPATH=src python docs/search_demo.py --budget 12 --out /tmp/demo

θ_base is the pretrained MiniLM with a seeded random head. Each subgroup vector τ_g is a short
full fine-tune from θ_base on that group's ``targeted+background`` training posts
(``--steps`` steps of 16 posts), so the vectors are weak and the numbers show the machinery on
real data, not the study's result. Validation and test are cut to ``--posts`` posts each
(race-targeted posts first). Prints one line per method and then ONE JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from fairmerge.data import load_dataset
from fairmerge.inference import collate, encode_inputs
from fairmerge.models import load_classifier, load_tokenizer
from fairmerge.search import (
    CoefficientSpace,
    Evaluations,
    Learner,
    MergedParameters,
    ResampledObjectives,
    SearchConfig,
    front_frame,
    front_hypervolume,
    grid_search,
    group_targets,
    hypervolume_table,
    learned_search,
    nsga2_search,
    objectives_of,
    score_front_on_test,
    tpe_search,
    write_front_csv,
    write_hypervolume_csv,
)
from fairmerge.search.scoring import CachedScoreFn
from fairmerge.study.evaluator import SplitEvaluator, evaluation_subset
from fairmerge.study.points import PointEvaluator
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.scorer import CandidateScorer
from fairmerge.study.stages.search import SEARCH_LABEL, SearchPoints
from fairmerge.study.stages.workspace import Workspace
from fairmerge.training.subgroups import subgroup_training_set

GROUPS = ("African", "Arab", "Caucasian")


def train_vector(
    model: torch.nn.Module, base: dict[str, torch.Tensor], tokenizer, split, steps: int, seed: int
):
    """θ_ft − θ_base after ``steps`` AdamW steps on ``split`` (16 posts a step), from θ_base."""
    model.load_state_dict(base)
    model.train()
    encoded = encode_inputs(tokenizer, split, max_length=64)
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-5)
    rng = np.random.default_rng(seed)
    labels = torch.as_tensor(split.labels)
    for _ in range(steps):
        rows = rng.choice(len(split), size=16, replace=False)
        loss = torch.nn.functional.cross_entropy(model(**collate(encoded, rows)).logits, labels[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    state = model.state_dict()
    return {k: (state[k] - base[k]).detach().clone() for k, _ in model.named_parameters()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=int, default=12, help="validation model evaluations per method")
    parser.add_argument("--posts", type=int, default=500, help="validation and test posts each")
    parser.add_argument("--steps", type=int, default=40, help="fine-tune steps per subgroup vector")
    parser.add_argument("--reference", type=float, default=0.4, help="hypervolume reference, every objective")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=None, help="write pareto_front.csv and hypervolume.csv here"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    began = time.perf_counter()
    config = SearchConfig(
        budget=args.budget, mus=[0.0, 4.0], n_resamples=200, reference_point=[args.reference] * 3
    )
    objectives = objectives_of(config.objectives)

    data = load_dataset("hatexplain")
    val = evaluation_subset(data["val"], args.posts, ["race"], seed=0)
    test = evaluation_subset(data["test"], args.posts, ["race"], seed=0)
    tokenizer = load_tokenizer(None)
    torch.manual_seed(args.seed)
    model = load_classifier(None).eval()
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    vectors = {}
    for i, group in enumerate(GROUPS):
        posts, _ = subgroup_training_set(data["train"], "race", group, "targeted+background", seed=args.seed)
        vectors[f"race:{group}"] = train_vector(model, base, tokenizer, posts, args.steps, args.seed + i)
    model.load_state_dict(base)
    trained = time.perf_counter() - began
    print(f"vectors trained: {', '.join(vectors)} ({trained:.0f} s, measured under load)")

    space = CoefficientSpace(tuple(vectors), low=config.low, high=config.high)
    workspace = Workspace(model, {"base": base})  # the only code that writes the model's weights
    workspace.add_blocks(str(SEARCH_LABEL), "base", vectors, space, config.blocks)
    cache = ScoreCache(Path("."), enabled=False)
    splits = {
        name: SplitEvaluator.build(
            name,
            split,
            tokenizer,
            attributes=["race"],
            max_length=64,
            min_group_size=30,
            batch_size=64,
            cache=cache,
        )
        for name, split in (("val", val), ("test", test))
    }
    scorer = CandidateScorer(splits["val"], splits["test"], workspace, args.seed)
    score = CachedScoreFn(SearchPoints(PointEvaluator(scorer, False, "accuracy", 200, 0), tuple(space.names)))
    evaluations = Evaluations(score, space, objectives)
    learner = Learner(
        model,
        MergedParameters(model, base, vectors, space, config.blocks),
        partial(collate, splits["val"].encoded),
        group_targets(val, objectives, min_group_size=30),
        config.learning_rate,
        config.batch_size,
    )
    searches = {
        "grid": lambda: grid_search(evaluations, args.budget),
        "tpe": lambda: tpe_search(evaluations, args.budget, seed=args.seed, start_lambda=0.5),
        "nsga2": lambda: nsga2_search(evaluations, args.budget, seed=args.seed, start_lambda=0.5),
        "learned": lambda: learned_search(
            evaluations, learner, args.budget, config.mus, seed=args.seed, start_lambda=0.5
        ),
        "orthogonal": lambda: learned_search(
            evaluations, learner, args.budget, config.mus, seed=args.seed, start_lambda=0.5, orthogonal=True
        ),
    }
    results, predictions, fronts = {}, {}, []
    for method, run in searches.items():
        result = run()
        test_points = score_front_on_test(result, evaluations)
        results[method], predictions[method] = [result], [score.test_predictions(test_points)]
        fronts.append(front_frame(result, test_points))
        hv = front_hypervolume(result.front, objectives, config.reference_point)
        print(
            f"{method:>10}: {result.n_evaluations} evaluations, {result.wall_s:.0f} s, "
            f"front of {len(result.front)}, validation hypervolume {hv:.4f}"
        )
    scorer = ResampledObjectives(test.labels, test.memberships(["race"]), objectives, min_group_size=30)
    table = hypervolume_table(
        results, predictions, scorer, config.reference_point, n_resamples=config.n_resamples, seed=args.seed
    )
    print(f"reference point {config.reference_point} in (accuracy, 1 − race DPD, 1 − race EOD)")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_front_csv(args.out / "pareto_front.csv", fronts)
        write_hypervolume_csv(args.out / "hypervolume.csv", table)
    summary = {
        "budget": args.budget,
        "posts": args.posts,
        "steps": args.steps,
        "reference_point": config.reference_point,
        "evaluations": evaluations.counts,
        "wall_s": round(time.perf_counter() - began, 1),
        "search": json.loads(table.to_json(orient="records")),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
