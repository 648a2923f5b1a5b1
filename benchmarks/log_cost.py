#!/usr/bin/env python
"""What Lightning's ``self.log`` costs the CPU in a training step, against a step without it.

    python benchmarks/log_cost.py [--steps 2000] [--logs 6]

Trains a one-layer model on the CPU (its compute is negligible) for ``--steps`` steps, logging
``--logs`` values per step or none, twice each, and prints ms per step and the cost of one call.
A training step logs 2-6 values (the total and each loss); on a GPU, where the CPU queues the
step's work, that time is part of the step unless the GPU is the slower side.
"""

import argparse
import time
import warnings

import pytorch_lightning as pl
import torch


class Tiny(pl.LightningModule):
    def __init__(self, logs: int):
        super().__init__()
        self.layer, self.logs = torch.nn.Linear(4, 1), logs

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).square().mean()
        for k in range(self.logs):
            self.log(f"value{k}", loss.detach(), batch_size=len(batch[0]))
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def ms_per_step(logs: int, steps: int) -> float:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(16 * steps, 4)), batch_size=16)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    start = time.perf_counter()
    trainer.fit(Tiny(logs), data)
    return 1000 * (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--logs", type=int, default=6)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    runs = {logs: min(ms_per_step(logs, args.steps) for _ in range(2)) for logs in (0, args.logs)}
    print(f"no logging: {runs[0]:.3f} ms/step; {args.logs} values logged: {runs[args.logs]:.3f} ms/step "
          f"({runs[args.logs] / runs[0]:.2f}x); one self.log: {(runs[args.logs] - runs[0]) / args.logs:.3f} ms")


if __name__ == "__main__":
    main()
