"""Plugin problem wrapping a PyTorch model: x is the model's flattened weights (needs torch installed).

A small tanh MLP fitted by mean squared error to a seeded synthetic regression set; swap in
your own `torch.nn.Module` and data in `from_config`. Gradients come from autograd on the
sampled rows, in float64, one thread per process (MPI ranks share the cores). Use it with
`--plugin examples/torch_model.py --set problem.name=torch_mlp`.
"""

from __future__ import annotations

import numpy as np
import torch

import asyncopt_mpi as ao

torch.set_num_threads(1)


class TorchMLP(ao.Problem):
    name = "torch_mlp"
    description = "a PyTorch MLP on a seeded synthetic regression set; x = its flattened weights"
    params = {"hidden": 16, "features": 8}  # own config keys: problem.hidden, problem.features

    def __init__(self, model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor):
        self.model, self.X, self.y = model, X, y
        self.n_samples = len(y)
        self.start = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy().copy()
        self.dim = self.start.size

    @classmethod
    def from_config(cls, config) -> "TorchMLP":
        features, hidden, samples = config.params["features"], config.params["hidden"], config.samples or 512
        rng = np.random.default_rng(config.seed)
        X = rng.standard_normal((samples, features))
        y = np.sin(X @ rng.standard_normal(features)) + config.noise * rng.standard_normal(samples)
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        model = torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))
        return cls(model.double(), torch.from_numpy(X), torch.from_numpy(y))

    def _mse(self, x: np.ndarray, rows) -> torch.Tensor:
        torch.nn.utils.vector_to_parameters(torch.tensor(x, dtype=torch.float64), self.model.parameters())
        prediction = self.model(self.X[rows]).squeeze(-1)
        return 0.5 * torch.mean((prediction - self.y[rows]) ** 2)

    def x0(self) -> np.ndarray:
        return self.start.copy()

    def loss(self, x: np.ndarray) -> float:
        with torch.no_grad():
            return float(self._mse(x, slice(None)))

    def grad(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        self.model.zero_grad()
        self._mse(x, torch.as_tensor(idx)).backward()
        return np.concatenate([p.grad.numpy().ravel() for p in self.model.parameters()])

    def full_grad(self, x: np.ndarray) -> np.ndarray:
        return self.grad(x, np.arange(self.n_samples))

    def stochastic_grad(self, x, rng, batch=1, shard=None) -> np.ndarray:
        return self.finite_sum_grad(x, rng, batch, shard)


ao.register_problem(TorchMLP.name, TorchMLP)
