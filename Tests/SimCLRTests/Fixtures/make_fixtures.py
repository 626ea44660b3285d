"""Fixtures for the contrastive losses from an independent implementation:
pytorch-metric-learning's NTXentLoss and SupConLoss (pip install torch
pytorch-metric-learning). Run from the repository root:

    python Tests/SimCLRTests/Fixtures/make_fixtures.py

It writes contrastive-losses.json: per case the embeddings (unnormalized, the losses
normalize them), labels, temperature, loss and d loss / d embeddings, in float64.

Conventions (docs/papers/simclr.md, docs/papers/supcon.md): NTXentLoss with labels = image
index is SimCLR's NT-Xent (each of the 2N views an anchor, its positive the other view, the
2N-2 other views its negatives, mean over the 2N positive pairs). SupConLoss is L_out with
the average over positives outside the log, averaged over the anchors that have a positive
(its AvgNonZeroReducer drops anchors whose loss is 0, i.e. those without a positive);
SupContrast's code also multiplies by tau/0.07 and divides by every anchor, PML does not.
PML has no L_in: the Swift tests check L_in against a naive loop only.
"""
import json

import torch
import pytorch_metric_learning
from pytorch_metric_learning.losses import NTXentLoss, SupConLoss

torch.manual_seed(0)
cases = []


def case(name, loss_fn, embeddings, labels, temperature):
    x = embeddings.clone().double().requires_grad_(True)
    loss = loss_fn(temperature=temperature)(x, torch.tensor(labels))
    loss.backward()
    cases.append({"name": name, "loss_function": loss_fn.__name__, "temperature": temperature,
                  "rows": x.shape[0], "dimension": x.shape[1], "labels": labels,
                  "embeddings": x.detach().flatten().tolist(), "loss": loss.item(),
                  "gradient": x.grad.flatten().tolist()})


for n, d, tau in [(4, 5, 0.5), (6, 3, 0.1), (8, 16, 1.0)]:
    case(f"ntxent-n{n}-d{d}-tau{tau}", NTXentLoss, torch.randn(2 * n, d), list(range(n)) * 2, tau)
# SupCon: classes of 1 to 4 images (two views each) and one view whose class is alone (no positive).
labels = [0, 1, 2, 0, 1, 3, 0, 1, 2, 0, 1, 3, 4]
for d, tau in [(6, 0.1), (4, 0.5)]:
    case(f"supcon-v{len(labels)}-d{d}-tau{tau}", SupConLoss, torch.randn(len(labels), d), labels, tau)
case("supcon-as-ntxent-n5", SupConLoss, torch.randn(10, 7), list(range(5)) * 2, 0.2)

with open("Tests/SimCLRTests/Fixtures/contrastive-losses.json", "w") as f:
    json.dump({"generator": f"pytorch-metric-learning {pytorch_metric_learning.__version__}, torch {torch.__version__}",
               "cases": cases}, f, indent=1)
print(f"{len(cases)} cases")
