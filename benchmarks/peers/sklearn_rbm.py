"""scikit-learn's BernoulliRBM beside genzoo's RBM (`dbn` with one hidden layer) on binarized MNIST.

    python benchmarks/peers/sklearn_rbm.py [--quick]

Both sides: 784 binary visible units, 500 hidden units, persistent contrastive divergence with one
Gibbs step and as many chains as a batch holds (64), batches of 64 drawn from the same 8,000 training
images of `mnist-binary` (the t10k file binarized at 0.5), and the same number of updates.
What differs, and cannot be made equal: scikit-learn updates with plain SGD (its only optimizer,
learning rate 0.05 as benchmarks/binarized_mnist.py uses it), in NumPy with hand-written gradients;
genzoo with the Trainer's AdamW (lr 1e-3, constant) on autograd gradients of the free-energy
difference, and it starts the visible biases at the data's marginals. A genzoo step also logs a
reconstruction error and an 8-row pseudo-likelihood estimate, as `genzoo train` does.
Quality after the same updates, by one code path for both (scikit-learn's weights loaded into a
genzoo RBM): the test NLL by AIS (nats per image) and the exact test pseudo-NLL.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from sidebyside import alternate, batches, genzoo_trainer, row, run_alone
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from binarized_mnist import rbm_from_sklearn, split_units  # noqa: E402

HIDDEN, BATCH, SKLEARN_LR = 500, 64, 0.05
AIS = {"betas": 5000, "chains": 100}


def quality(rbm, test: torch.Tensor, seed: int = 0) -> dict:
    log_z = rbm.ais_log_partition(
        AIS["betas"], AIS["chains"], generator=torch.Generator().manual_seed(seed)
    ).log_z
    with torch.no_grad():
        return {
            "nll": float((rbm.free_energy(test) + log_z).mean()),
            "pseudo_nll": -float(rbm.pseudo_log_likelihood(test).mean()),
        }


def run(quick: bool) -> list[dict]:
    from sklearn.neural_network import BernoulliRBM

    rounds, calls = (2, 20) if quick else (6, 500)
    steps = 1 + rounds * calls
    settings = {"hidden": [HIDDEN], "persistent": True, "pcd_chains": BATCH, "cd_k": 1,
                "batch_size": BATCH, "layer_steps": steps, "max_steps": steps}  # fmt: skip
    trainer = genzoo_trainer("dbn", "mnist-binary", settings)
    data = trainer.data
    train_x, test = split_units(data, "train"), split_units(data, "test")
    peer = BernoulliRBM(n_components=HIDDEN, learning_rate=SKLEARN_LR, batch_size=BATCH, random_state=0)
    stream = batches(train_x, BATCH)
    with threadpool_limits(1):  # NumPy's BLAS on one thread, as torch is
        rates = alternate(
            {
                "genzoo": lambda: trainer.train_steps(1),
                "sklearn": lambda: peer.partial_fit(next(stream).numpy()),
            },
            rounds=rounds,
            calls=calls,
        )
    ours = quality(trainer.model.rbms[0], test)
    theirs = quality(rbm_from_sklearn(peer, train_x), test)
    params = {"genzoo": HIDDEN * 784 + HIDDEN + 784, "peer": peer.components_.size + HIDDEN + 784}
    return [
        row("scikit-learn / rbm", f"PCD-1 training, {steps} updates", "steps/s", rates, ("genzoo", "sklearn"),
            parameters=params,
            quality={"metric": "test NLL (AIS, nats)", "genzoo": round(ours["nll"], 2),
                     "peer": round(theirs["nll"], 2), "better": "lower"},
            pseudo_nll={"genzoo": round(ours["pseudo_nll"], 2), "peer": round(theirs["pseudo_nll"], 2)},
            optimizers={"genzoo": "AdamW lr 1e-3", "peer": f"SGD lr {SKLEARN_LR}"}),
    ]  # fmt: skip


if __name__ == "__main__":
    run_alone("sklearn", run)
