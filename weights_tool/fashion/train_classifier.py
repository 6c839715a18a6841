"""Small CNN classifier on Fashion-MNIST, used as the feature extractor for Fréchet distance / KID and for the class
accuracy of generated samples.

Input: the generator's space, (N, 1, 32, 32) in [-1, 1] (28x28 padded with -1). Architecture (all convs 3x3, stride
1, padding 1, with bias; maxpool 2x2 stride 2; flatten in (C, H, W) order):

    conv1 1->32, ReLU, maxpool   -> 32 x 16 x 16
    conv2 32->64, ReLU, maxpool  -> 64 x 8 x 8
    conv3 64->128, ReLU, maxpool -> 128 x 4 x 4
    flatten 2048, fc1 2048->128, ReLU    -> features (128, penultimate layer, post-ReLU)
    fc2 128->10                          -> logits

Training: Adam lr 1e-3 (x0.3 for the last max(1, epochs // 4) epochs), batch 128, random translation by up to +-2 px (a roll of the padded
image, which only moves -1 border pixels), dropout 0.3 on the features during training only. Seeded, resumable per
epoch. Logs to <out>/classifier_loss.csv; the final weights to <out>/classifier_final.pt.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from common import CsvLog, Timer, atomic_save, load_checkpoint, setup_threads  # noqa: E402


class FashionCNN(nn.Module):
    def __init__(self, num_classes=10, drop=0.3):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, num_classes)
        self.drop = nn.Dropout(drop)

    def features(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x):
        return self.fc2(self.drop(self.features(x)))


ARCH = {
    "input": "(N, 1, 32, 32) float, pixel/127.5 - 1, 28x28 centred with 2 px of -1 padding",
    "layers": [
        {"op": "conv2d", "name": "conv1", "in": 1, "out": 32, "kernel": 3, "stride": 1, "padding": 1},
        {"op": "relu"}, {"op": "maxpool2d", "kernel": 2, "stride": 2},
        {"op": "conv2d", "name": "conv2", "in": 32, "out": 64, "kernel": 3, "stride": 1, "padding": 1},
        {"op": "relu"}, {"op": "maxpool2d", "kernel": 2, "stride": 2},
        {"op": "conv2d", "name": "conv3", "in": 64, "out": 128, "kernel": 3, "stride": 1, "padding": 1},
        {"op": "relu"}, {"op": "maxpool2d", "kernel": 2, "stride": 2},
        {"op": "flatten", "order": "CHW", "size": 2048},
        {"op": "linear", "name": "fc1", "in": 2048, "out": 128},
        {"op": "relu", "features": True},
        {"op": "linear", "name": "fc2", "in": 128, "out": 10},
    ],
    "features": "fc1 output after ReLU, 128-d (penultimate layer)",
    "logits": "fc2 output, 10 classes in Fashion-MNIST label order",
    "weights": "PyTorch layouts: conv [out, in, kh, kw] (cross-correlation), linear [out, in], y = x W^T + b",
}


@torch.no_grad()
def evaluate(model, x, y, bs=500):
    model.eval()
    correct = 0
    for s in range(0, x.shape[0], bs):
        correct += (model(x[s:s + bs]).argmax(1) == y[s:s + bs]).sum().item()
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--max-steps-per-epoch", type=int, default=0, help="smoke runs only")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    setup_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "classifier_last.pt")
    torch.manual_seed(args.seed)
    model = FashionCNN()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    epoch = 0
    ck = load_checkpoint(ckpt_path)
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        epoch = ck["epoch"]
        print(f"resumed at epoch {epoch}", flush=True)
    x_tr, y_tr = data.load("train")
    x_te, y_te = data.load("t10k")
    n = x_tr.shape[0]
    spe = n // args.batch
    if args.max_steps_per_epoch:
        spe = min(spe, args.max_steps_per_epoch)
    log = CsvLog(os.path.join(args.out, "classifier_loss.csv"), ["step", "epoch", "loss", "train_acc", "test_acc",
                                                                  "wall"], resume_step=epoch * spe)
    timer = Timer()
    while epoch < args.epochs:
        model.train()
        lr = args.lr * (0.3 if args.epochs > 1 and epoch >= args.epochs - max(1, args.epochs // 4) else 1.0)
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        torch.manual_seed(args.seed * 1000 + epoch)  # dropout masks
        run_loss, run_acc, cnt = 0.0, 0.0, 0
        for k in range(spe):
            step = epoch * spe + k
            idx = data.batch_indices(args.seed + 2, step, args.batch, n)
            x, y = x_tr[idx], y_tr[idx]
            g = data.step_generator(args.seed, step, stream=3)
            sh = torch.randint(-2, 3, (2,), generator=g).tolist()
            x = torch.roll(x, shifts=(sh[0], sh[1]), dims=(2, 3))
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            run_loss += loss.item()
            run_acc += (logits.argmax(1) == y).float().mean().item()
            cnt += 1
            if (k + 1) % 50 == 0 or k + 1 == spe:
                test_acc = evaluate(model, x_te, y_te) if k + 1 == spe else ""
                log.write(step=step + 1, epoch=epoch, loss=f"{run_loss / cnt:.5f}", train_acc=f"{run_acc / cnt:.4f}",
                          test_acc=test_acc if test_acc == "" else f"{test_acc:.4f}", wall=f"{timer.elapsed():.1f}")
                print(f"epoch {epoch} step {k + 1}/{spe} loss {run_loss / cnt:.4f} acc {run_acc / cnt:.4f}"
                      f"{'' if test_acc == '' else f' test_acc {test_acc:.4f}'} {timer.elapsed():.0f}s", flush=True)
                run_loss, run_acc, cnt = 0.0, 0.0, 0
                model.train()
        epoch += 1
        atomic_save(dict(model=model.state_dict(), opt=opt.state_dict(), epoch=epoch), ckpt_path)
    test_acc = evaluate(model, x_te, y_te)
    train_acc = evaluate(model, x_tr[:10000], y_tr[:10000])
    print(f"final test accuracy {test_acc:.4f} (train[:10k] {train_acc:.4f})", flush=True)
    atomic_save(dict(model=model.state_dict(), test_acc=test_acc, train_acc_10k=train_acc, arch=ARCH,
                     args=vars(args)), os.path.join(args.out, "classifier_final.pt"))
    print("done", flush=True)


if __name__ == "__main__":
    main()
