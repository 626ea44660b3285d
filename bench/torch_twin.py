#!/usr/bin/env python3
"""PyTorch twins of Replica's benchmark workloads (R1-R7), and the clustering workloads (C1-C2) beside scipy and
scikit-learn when those import, for `make bench-vs-torch`.

The same models, shapes, batch sizes and optimizers as Sources/Replica/BenchWorkloads.swift; the same timing rule (median of N steps after W
warm-ups). Prints one JSON object: {"workload name": {"ms_median": ..., "iters": ...}}.

  python bench/torch_twin.py --threads 2 --only R2
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def peak_rss_mb():
    """This process's own peak resident size since exec (VmHWM), as Replica's bench reports it."""
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024


def timed(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"ms_median": statistics.median(times), "ms_min": min(times), "iters": iters, "warmup": warmup}


def backbone():
    layers = []
    for cin, cout, s in [(1, 32, 1), (32, 64, 2), (64, 128, 2), (128, 256, 2)]:
        layers += [nn.Conv2d(cin, cout, 3, s, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))


def resnet18():
    layers, cin = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)], 64
    for cout, s in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers += [Block(cin, cout, s), Block(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))


def timed_inference(model, x, warmup, iters):
    """Forward passes in eval mode without autograd."""
    model.eval()

    def infer():
        with torch.inference_mode():
            model(x)

    return timed(infer, warmup, iters)


def sgd(m):
    return torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)


def r1(q):
    out = {}
    for m, n, k in [(1024, 1024, 1024), (256, 4096, 1024), (256, 1024, 4096)]:
        a, b, c = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
        r = timed(lambda: torch.mm(a, b, out=c), 1 if q else 5, 3 if q else 30)
        r["gflops"] = 2.0 * m * n * k / (r["ms_median"] * 1e-3) / 1e9
        out[f"R1 sgemm {m}x{n}x{k}"] = r
    return out


def r2(q):
    model = nn.Sequential(backbone(), nn.Linear(256, 10)).train()
    opt, x, y = sgd(model), torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    train = timed(step, 1 if q else 5, 3 if q else 20)
    return {"R2 convnet-fmnist train b256": train, "R2 convnet-fmnist infer b256": timed_inference(model, x, 1 if q else 5, 3 if q else 20)}


def simsiam_step(bb, h, output_affine):
    """One SimSiam step (two views of 256, symmetric negative cosine, stop-gradient on z)."""
    proj = nn.Sequential(nn.Linear(h, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
                         nn.Linear(512, 512, bias=False), nn.BatchNorm1d(512, affine=output_affine))
    pred = nn.Sequential(nn.Linear(512, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True), nn.Linear(128, 512))
    model = nn.ModuleList([bb, proj, pred]).train()
    opt, x1, x2 = sgd(model), torch.randn(256, 1, 28, 28), torch.randn(256, 1, 28, 28)

    def step():
        opt.zero_grad(set_to_none=True)
        z1, z2 = proj(bb(x1)), proj(bb(x2))
        p1, p2 = pred(z1), pred(z2)
        loss = -(F.cosine_similarity(p1, z2.detach(), dim=1).mean() + F.cosine_similarity(p2, z1.detach(), dim=1).mean()) * 0.5
        loss.backward()
        opt.step()

    return step


def r3(q):
    return {"R3 simsiam-fmnist train 2x256": timed(simsiam_step(backbone(), 256, True), 1 if q else 5, 3 if q else 20)}


def convnet4_lite():
    layers, cin = [], 1
    for cout in (16, 32, 64, 128):
        layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def r7(q):
    bb = convnet4_lite()
    train = timed(simsiam_step(bb, 128, False), 1 if q else 5, 3 if q else 20)
    infer = timed_inference(bb, torch.randn(1000, 1, 28, 28), 1 if q else 3, 3 if q else 10)
    return {"R7 simsiam convnet4-lite train 2x256": train, "R7 convnet4-lite features b1000": infer}


def s1(q):
    """SimCLR's step: convnet4-lite, MLP head 128-128 (BN, ReLU)-64, NT-Xent at tau 0.5 over
    two views of 256 (row v*256 + k is view v of image k), SGD."""
    model = nn.Sequential(convnet4_lite(), nn.Linear(128, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
                          nn.Linear(128, 64)).train()
    opt, x, n = sgd(model), torch.randn(512, 1, 28, 28), 256
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])

    def step():
        opt.zero_grad(set_to_none=True)
        u = F.normalize(model(x), dim=1)
        logits = (u @ u.t()) / 0.5
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
        F.cross_entropy(logits, targets).backward()
        opt.step()

    return {"S1 simclr convnet4-lite NT-Xent train 2x256": timed(step, 1 if q else 5, 3 if q else 20)}


def p1(q):
    """PCL's M-step: the key encoder follows the query encoder (m 0.99) and encodes the
    shuffled key view in 4 BN splits; InfoNCE against a queue of 4096 plus ProtoNCE over
    three clusterings (50, 100, 200 prototypes with concentrations); SGD; enqueue."""
    def encoder():
        return nn.Sequential(convnet4_lite(), nn.Linear(128, 128), nn.ReLU(inplace=True), nn.Linear(128, 64))
    query, key = encoder().train(), encoder().train()
    key.load_state_dict(query.state_dict())
    for p in key.parameters():
        p.requires_grad_(False)
    opt, xq, xk = sgd(query), torch.randn(256, 1, 28, 28), torch.randn(256, 1, 28, 28)
    queue, ptr = F.normalize(torch.randn(4096, 64), dim=1), [0]
    protos = [(F.normalize(torch.randn(k, 64), dim=1), 0.1 + 0.2 * torch.rand(k), torch.randint(0, k, (256,))) for k in (50, 100, 200)]
    perm = torch.randperm(256)
    inverse = torch.argsort(perm)
    zeros = torch.zeros(256, dtype=torch.long)

    def split(enc, x):
        return torch.cat([enc(c) for c in x.chunk(4)])

    def step():
        with torch.no_grad():
            for pk, pq in zip(key.parameters(), query.parameters()):
                pk.mul_(0.99).add_(pq, alpha=0.01)
            k = F.normalize(split(key, xk[perm]), dim=1)[inverse]
        opt.zero_grad(set_to_none=True)
        qv = F.normalize(split(query, xq), dim=1)
        logits = torch.cat([(qv * k).sum(1, keepdim=True), qv @ queue.t()], dim=1) / 0.2
        proto = sum(F.cross_entropy(qv @ c.t() / phi, a) for c, phi, a in protos) / 3
        (F.cross_entropy(logits, zeros) + proto).backward()
        opt.step()
        queue[ptr[0]:ptr[0] + 256] = k
        ptr[0] = (ptr[0] + 256) % 4096

    return {"P1 pcl step convnet4-lite 2x256, queue 4096, 3 clusterings, 4 BN splits": timed(step, 1 if q else 5, 3 if q else 20)}


def m1(q):
    """The Ranked List Loss step: MLP 784-512-256-64 on a 5 x 12 batch, RLL (alpha 1.2, m 0.4,
    T_n 10, T_p 0) with the authors' gradient: weights constant, gallery detached."""
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 64))
    opt, x = torch.optim.Adam(model.parameters(), lr=1e-3), torch.randn(60, 784)
    labels = torch.arange(60) // 12
    same, eye = labels[:, None] == labels[None, :], torch.eye(60, dtype=torch.bool)
    alpha, inner, tn, eps = 1.2, 0.8, 10.0, 1e-5

    def step():
        opt.zero_grad(set_to_none=True)
        u = F.normalize(model(x), dim=1)
        d = torch.cdist(u, u.detach())
        with torch.no_grad():
            pos, neg = same & ~eye & (d > inner), ~same & (d < alpha)
            wp = pos.float()
            wn = torch.exp(tn * (alpha - d)) * neg
            wp = wp / (wp.sum(1, keepdim=True) + 60 * eps)
            wn = wn / (wn.sum(1, keepdim=True) + 60 * eps)
        loss = ((wp * (d - inner)).sum() + (wn * (alpha - d)).sum()) / 60
        loss.backward()
        opt.step()

    return {"M1 ranked list loss step mlp 784-512-256-64 b60 (authors' gradient, Adam)": timed(step, 1 if q else 10, 3 if q else 100)}


def r4(q):
    model = resnet18().train()
    opt, x, y = sgd(model), torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    train = timed(step, 1 if q else 2, 1 if q else 5)
    infer = timed_inference(model, torch.randn(256, 3, 32, 32), 1 if q else 2, 1 if q else 5)
    return {"R4 resnet18-cifar train b128": train, "R4 resnet18-cifar infer b256": infer}


def r5(q):
    enc = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU())
    mu_l, lv_l = nn.Linear(256, 32), nn.Linear(256, 32)
    dec = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 784))
    model = nn.ModuleList([enc, mu_l, lv_l, dec])
    opt, x = torch.optim.Adam(model.parameters(), lr=1e-3), torch.rand(128, 784)

    def step():
        opt.zero_grad(set_to_none=True)
        h = enc(x)
        mu, logvar = mu_l(h), lv_l(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        rec = F.binary_cross_entropy_with_logits(dec(z), x, reduction="sum") / 128
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / 128
        (rec + kl).backward()
        opt.step()

    return {"R5 vae-mlp train b128 (Adam)": timed(step, 1 if q else 5, 3 if q else 100)}


def r6(q):
    enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
                        nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 20))
    dec = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 1024), nn.ReLU(), nn.Unflatten(1, (64, 4, 4)),
                        nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                        nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))
    model = nn.ModuleList([enc, dec])
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = (torch.rand(64, 1, 64, 64) > 0.9).float()

    def step():
        opt.zero_grad(set_to_none=True)
        h = enc(x)
        mu, logvar = h[:, :10], h[:, 10:]
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        rec = F.binary_cross_entropy_with_logits(dec(z), x, reduction="sum") / 64
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / 64
        (rec + kl).backward()
        opt.step()

    return {"R6 dsprites conv-VAE train b64 (Adam)": timed(step, 1 if q else 5, 3 if q else 20)}


def c1(q):
    """NAT's reassignment of one batch: scipy's linear_sum_assignment on a 256x256 cost."""
    try:
        import numpy as np
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        return {}
    cost = np.random.default_rng(0).standard_normal((256, 256))
    return {"C1 hungarian 256x256": timed(lambda: linear_sum_assignment(cost), 1 if q else 3, 3 if q else 20)}


def c2(q):
    """DeepCluster's clustering step: scikit-learn's PCA (whitened, 64 components), l2, Lloyd k-means k=100, 20 iterations."""
    try:
        import numpy as np
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
    except ImportError:
        return {}
    n = 6000 if q else 60000
    x = np.random.default_rng(0).standard_normal((n, 128)).astype(np.float32)

    def step():
        z = PCA(n_components=64, whiten=True, svd_solver="full").fit_transform(x)
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        KMeans(n_clusters=100, init="random", n_init=1, max_iter=20, tol=0, algorithm="lloyd", random_state=1).fit(z)

    return {f"C2 pca-whiten {n}x128 to 64 + k-means k=100 (20 iterations)": timed(step, 0 if q else 1, 1 if q else 3)}


def f1(q):
    """FactorVAE's step as Replica's experiment runs it: the MLP VAE (1024-256-128-10) with
    gamma * TC from the discriminator, then the discriminator (10-3x256-2, LeakyReLU 0.2) on z
    against a second batch's z with each dimension permuted."""
    enc = nn.Sequential(nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 20))
    dec = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 1024))
    disc = nn.Sequential(nn.Linear(10, 256), nn.LeakyReLU(0.2), nn.Linear(256, 256), nn.LeakyReLU(0.2),
                         nn.Linear(256, 256), nn.LeakyReLU(0.2), nn.Linear(256, 2))
    vae = nn.ModuleList([enc, dec])
    opt = torch.optim.Adam(vae.parameters(), lr=1e-4)
    dopt = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.9))
    x, x2 = (torch.rand(64, 1024) > 0.9).float(), (torch.rand(64, 1024) > 0.9).float()
    zeros, ones = torch.zeros(64, dtype=torch.long), torch.ones(64, dtype=torch.long)

    def step():
        h = enc(x)
        mu, logvar = h[:, :10], h[:, 10:]
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        rec = F.binary_cross_entropy_with_logits(dec(z), x, reduction="sum") / 64
        kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - logvar - 1) / 64
        d = disc(z)
        loss = rec + kl + 40 * (d[:, 0] - d[:, 1]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            h2 = enc(x2)
            z2 = h2[:, :10] + torch.randn(64, 10) * torch.exp(0.5 * h2[:, 10:])
            perm = torch.stack([z2[torch.randperm(64), j] for j in range(10)], dim=1)
        dopt.zero_grad(set_to_none=True)
        (0.5 * (F.cross_entropy(disc(z.detach()), zeros) + F.cross_entropy(disc(perm), ones))).backward()
        dopt.step()

    return {"F1 factorvae step mlp-32 b64 + discriminator (Adam x2)": timed(step, 1 if q else 5, 3 if q else 100)}


def f2(q):
    """The Ladder VAE's step as Replica's lvae arm runs it: blocks Linear -> BatchNorm ->
    LeakyReLU(0.1), Gaussian heads (mean Linear+BN; variance Linear+BN, softplus + 1e-5, its
    BN shift starting at 1), the bottom-up pass, top-down sampling with the precision-weighted
    merge against the generative p(z_i | z_i+1), beta-weighted negative ELBO, clipping to norm
    4 then +-0.9, Adam (1e-3, eps 1e-4)."""
    def block(i, o):
        return nn.Sequential(nn.Linear(i, o, bias=False), nn.BatchNorm1d(o), nn.LeakyReLU(0.1))

    class Head(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.mean = nn.Sequential(nn.Linear(i, o, bias=False), nn.BatchNorm1d(o))
            self.var = nn.Sequential(nn.Linear(i, o, bias=False), nn.BatchNorm1d(o))
            nn.init.ones_(self.var[1].bias)

        def forward(self, h):
            return self.mean(h), F.softplus(self.var(h)) + 1e-5

    lat, wid = [32, 16, 8], [256, 128, 64]
    up = nn.ModuleList([block(784 if i == 0 else wid[i - 1], wid[i]) for i in range(3)])
    up_heads = nn.ModuleList([Head(wid[i], lat[i]) for i in range(3)])
    down = nn.ModuleList([block(lat[i + 1], wid[i + 1]) for i in range(2)])
    down_heads = nn.ModuleList([Head(wid[i + 1], lat[i]) for i in range(2)])
    decoder = nn.Sequential(block(32, 256), nn.Linear(256, 784))
    model = nn.ModuleList([up, up_heads, down, down_heads, decoder])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-4)
    x = (torch.rand(256, 784) > 0.7).float()
    log2pi = math.log(2 * math.pi)

    def logn(z, m, v):
        return -0.5 * (((z - m) ** 2 / v + v.log()).sum(1) + z.shape[1] * log2pi)

    def step():
        h, est = x, []
        for i in range(3):
            h = up[i](h)
            est.append(up_heads[i](h))
        m, v = est[2]
        z = m + v.sqrt() * torch.randn_like(m)
        kl = logn(z, m, v) - logn(z, torch.zeros_like(z), torch.ones_like(z))
        for i in (1, 0):
            pm, pv = down_heads[i](down[i](z))
            (em, ev) = est[i]
            qv = 1 / (1 / ev + 1 / pv)
            qm = (em / ev + pm / pv) * qv
            z = qm + qv.sqrt() * torch.randn_like(qm)
            kl = kl + logn(z, qm, qv) - logn(z, pm, pv)
        logits = decoder(z)
        ll = (logits * x - F.softplus(logits)).sum(1)
        loss = (0.5 * kl - ll).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 4)
        torch.nn.utils.clip_grad_value_(model.parameters(), 0.9)
        opt.step()

    return {"F2 ladder vae step 784-256-128-64, latents 32-16-8, BN, b256 (Adam, clipping)": timed(step, 1 if q else 5, 3 if q else 100)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="R1,R2,R3,R4,R5,R6,R7,C1,C2,F1,F2")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    res = {}
    for tag in a.only.split(","):
        res.update({"R1": r1, "R2": r2, "R3": r3, "R4": r4, "R5": r5, "R6": r6, "R7": r7, "S1": s1, "P1": p1, "M1": m1, "C1": c1, "C2": c2, "F1": f1, "F2": f2}[tag.strip()](a.quick))
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "results": res, "peak_rss_mb": peak_rss_mb()}))
