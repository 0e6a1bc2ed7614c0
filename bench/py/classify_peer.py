"""PyTorch peer of bench/classify.ts: ResNet-18 adapted to 28x28 inputs as the
MedMNIST v2 baselines are (3x3 stride-1 first convolution, no max pooling,
BasicBlocks 2-2-2-2 at 64-128-256-512, global average pooling, linear head),
trained with their recipe (Adam, lr 1e-3, batch 128, cross-entropy, inputs
normalised to [-1, 1], no augmentation, the learning rate divided by 10 at
50 % and 75 % of training) under a wall-clock budget instead of 100 epochs.
The epoch with the best validation AUC is evaluated on the test split
(ACC of the argmax, AUC of the class-1 softmax probability, sklearn).

Usage: classify_peer.py <npz> --minutes M [--limit N] [--seed S] [--threads T]
Prints one JSON object.
"""
import argparse
import copy
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.short(x))


class ResNet18Small(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        layers, cin = [], 64
        for i, w in enumerate([64, 128, 256, 512]):
            layers += [Block(cin, w, 1 if i == 0 else 2), Block(w, w, 1)]
            cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        h = self.layers(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


def first_per_class(labels, limit):
    """Up to `limit` indices alternating between classes in order (as medseg's --limit)."""
    lists = [list(np.flatnonzero(labels == c)) for c in sorted(set(labels.tolist()))]
    out, r = [], 0
    while len(out) < min(limit, len(labels)):
        for lst in lists:
            if r < len(lst) and len(out) < limit:
                out.append(lst[r])
        r += 1
    return np.array(sorted(out))


def load(z, split, limit):
    x = z[f"{split}_images"].astype(np.float32) / 255.0
    y = z[f"{split}_labels"].reshape(-1).astype(np.int64)
    if limit:
        keep = first_per_class(y, limit)
        x, y = x[keep], y[keep]
    x = (x - 0.5) / 0.5
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def predict(net, x):
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), 256):
            out.append(F.softmax(net(x[i : i + 256]), 1))
    return torch.cat(out).numpy()


def scores(prob, y):
    y = y.numpy()
    auc = roc_auc_score(y, prob[:, 1]) if prob.shape[1] == 2 else roc_auc_score(y, prob, multi_class="ovr")
    return {"auc": float(auc), "accuracy": float((prob.argmax(1) == y).mean())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("npz")
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    z = np.load(a.npz)
    xtr, ytr = load(z, "train", a.limit)
    xva, yva = load(z, "val", a.limit)
    xte, yte = load(z, "test", a.limit)
    k = int(max(ytr.max(), yva.max())) + 1
    net = ResNet18Small(1, k)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    budget = a.minutes * 60
    batch = min(128, len(xtr))
    gen = torch.Generator().manual_seed(a.seed)
    t0 = time.perf_counter()
    best, best_state, best_epoch, epochs, steps, log = -1.0, None, -1, 0, 0, []
    train_seconds = 0.0
    done = False
    while not done:
        net.train()
        order = torch.randperm(len(xtr), generator=gen)
        loss_sum, n = 0.0, 0
        for i in range(0, len(order), batch):
            elapsed = time.perf_counter() - t0
            if elapsed >= budget:
                done = True
                break
            lr = 1e-3 * (0.1 if elapsed >= 0.5 * budget else 1) * (0.1 if elapsed >= 0.75 * budget else 1)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = order[i : i + batch]
            ts = time.perf_counter()
            loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            train_seconds += time.perf_counter() - ts
            n += 1
            steps += 1
        if n == 0:
            break
        v = scores(predict(net, xva), yva)
        epochs += 1
        log.append({"epoch": epochs, "trainLoss": loss_sum / n, "valAuc": v["auc"], "seconds": time.perf_counter() - t0})
        if v["auc"] > best:
            best, best_epoch, best_state = v["auc"], epochs, copy.deepcopy(net.state_dict())
    minutes = (time.perf_counter() - t0) / 60
    if best_state is not None:
        net.load_state_dict(best_state)
    out = {
        "model": "ResNet-18 (28), MedMNIST recipe",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "epochs": epochs,
        "steps": steps,
        "bestEpoch": best_epoch,
        "minutes": minutes,
        "secondsPerStep": train_seconds / max(1, steps),
        "trainCases": len(xtr),
        "val": scores(predict(net, xva), yva),
        "test": scores(predict(net, xte), yte),
        "log": log,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
