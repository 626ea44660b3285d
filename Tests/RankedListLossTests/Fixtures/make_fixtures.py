"""Fixtures for the metric-learning losses from an independent implementation:
pytorch-metric-learning (pip install torch pytorch-metric-learning). Run from the
repository root:

    python Tests/RankedListLossTests/Fixtures/make_fixtures.py

It writes metric-losses.json: per case the loss and its settings, the embeddings
(unnormalized: every loss normalizes them), labels, loss and d loss / d embeddings, in float64.

Conventions (docs/papers/ranked-list-loss.md):
- RankedListLoss(margin, Tn, imbalance, alpha, Tp) is (1 - imbalance) L_P + imbalance L_N with
  gradients through the weights and both ends of every pair: Replica's gradient "autodiff"
  with lambda = imbalance / (1 - imbalance), times (1 - imbalance). The authors' gradient
  (weights and gallery constant) has the same value and another gradient: the Swift test
  checks that the two differ and that "authors" matches a naive loop.
- ContrastiveLoss(pos_margin, neg_margin): all ordered pairs, AvgNonZeroReducer per part.
- TripletMarginLoss(margin) on the triplets of TripletMarginMiner(margin, "semihard"),
  BatchHardMiner(), or all triplets (no miner); AvgNonZeroReducer.
- MultiSimilarityLoss(alpha, beta, base) on the pairs of MultiSimilarityMiner(epsilon), or
  all pairs (no miner); mean over all anchors.

It also writes, under "retrieval", PML's AccuracyCalculator (cosine kNN, every item a query
against all others) on random features: precision_at_1 (= Recall@1), r_precision and
mean_average_precision_at_r, for Evaluation's retrievalMetrics.
"""
import json

import torch
import pytorch_metric_learning
from pytorch_metric_learning.losses import (ContrastiveLoss, MultiSimilarityLoss,
                                            RankedListLoss, TripletMarginLoss)
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.miners import (BatchHardMiner, MultiSimilarityMiner,
                                            TripletMarginMiner)
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN

torch.manual_seed(0)
cases = []
labels = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]   # P = 4 classes x K = 4


def case(name, kind, settings, loss_fn, miner=None, rows=len(labels), dimension=8):
    x = torch.randn(rows, dimension).double().requires_grad_(True)
    y = torch.tensor(labels[:rows])
    loss = loss_fn(x, y, miner(x, y)) if miner else loss_fn(x, y)
    loss.backward()
    cases.append({"name": name, "kind": kind, "settings": settings, "rows": rows, "dimension": dimension,
                  "labels": labels[:rows], "embeddings": x.detach().flatten().tolist(), "loss": loss.item(),
                  "gradient": x.grad.flatten().tolist()})


# Ranked List Loss: the CVPR defaults (alpha 1.2, m 0.4, Tn 10, Tp 0, equal parts), the
# RLL-Simpler default of PML (alpha = 1 + m/2), weighted positives, another imbalance.
for margin, alpha, tn, tp, imbalance in [(0.4, 1.2, 10, 0, 0.5), (0.6, None, 5, 0, 0.5), (0.4, 1.3, 3, 2, 0.7), (0.0, 1.2, 0, 0, 0.5)]:
    settings = {"margin": margin, "alpha": alpha if alpha is not None else 1 + margin / 2, "tn": tn, "tp": tp, "imbalance": imbalance}
    case(f"rll-m{margin}-a{alpha}-tn{tn}-tp{tp}-imb{imbalance}", "ranked_list", settings,
         RankedListLoss(margin=margin, Tn=tn, imbalance=imbalance, alpha=alpha, Tp=tp))
for pos, neg in [(0.0, 0.5), (0.0, 1.0), (0.2, 1.1)]:
    case(f"contrastive-pos{pos}-neg{neg}", "contrastive", {"positive_margin": pos, "negative_margin": neg},
         ContrastiveLoss(pos_margin=pos, neg_margin=neg))
for margin in [0.2, 0.1]:
    case(f"triplet-semihard-{margin}", "triplet", {"margin": margin, "mining": "semihard"},
         TripletMarginLoss(margin=margin), TripletMarginMiner(margin=margin, type_of_triplets="semihard"))
case("triplet-batch-hard-0.2", "triplet", {"margin": 0.2, "mining": "batch_hard"}, TripletMarginLoss(margin=0.2), BatchHardMiner())
case("triplet-all-0.2", "triplet", {"margin": 0.2, "mining": "all"}, TripletMarginLoss(margin=0.2), rows=12)
case("ms-miner-2-50-0.5-eps0.1", "multi_similarity", {"alpha": 2, "beta": 50, "base": 0.5, "epsilon": 0.1},
     MultiSimilarityLoss(alpha=2, beta=50, base=0.5), MultiSimilarityMiner(epsilon=0.1))
case("ms-allpairs-2-10-0.5", "multi_similarity", {"alpha": 2, "beta": 10, "base": 0.5, "epsilon": None},
     MultiSimilarityLoss(alpha=2, beta=10, base=0.5))
case("ms-miner-1-20-0.3-eps0.2", "multi_similarity", {"alpha": 1, "beta": 20, "base": 0.3, "epsilon": 0.2},
     MultiSimilarityLoss(alpha=1, beta=20, base=0.3), MultiSimilarityMiner(epsilon=0.2), dimension=4)

retrieval = []
calculator = AccuracyCalculator(include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
                                knn_func=CustomKNN(CosineSimilarity()), k="max_bin_count")
for n, d, classes in [(60, 4, 4), (100, 8, 5), (45, 3, 3)]:
    x, y = torch.randn(n, d).double(), torch.randint(0, classes, (n,))
    retrieval.append({"rows": n, "dimension": d, "labels": y.tolist(), "features": x.flatten().tolist(),
                      **calculator.get_accuracy(x, y)})

with open("Tests/RankedListLossTests/Fixtures/metric-losses.json", "w") as f:
    json.dump({"generator": f"pytorch-metric-learning {pytorch_metric_learning.__version__}, torch {torch.__version__}",
               "cases": cases, "retrieval": retrieval}, f, indent=1)
print(f"{len(cases)} cases")
