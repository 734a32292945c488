"""The purchase processes of the buy-till-you-die family, as stories to simulate customers from: each
draws every customer's latent rates and their purchase times, in continuous time since the first
purchase (numpy only).

One process per purchase model, named as the model's ``short_name`` (``simulate(..., model="pnbd")``):

- ``bgnbd`` BG/NBD (Fader, Hardie & Lee 2005, section 3): Poisson purchasing at rate lambda ~ Gamma(r,
  alpha); after each repeat purchase, out with probability p ~ Beta(a, b);
- ``mbgnbd`` MBG/NBD (Batislam et al. 2007): the same, and out after the first purchase too;
- ``bgcnbd``, ``mbgcnbd`` (Reutterer, Platzer & Schröder 2021): their Erlang-k gaps (shape ``k``, rate
  lambda) in place of exponential ones;
- ``pnbd`` Pareto/NBD (Schmittlein, Morrison & Colombo 1987): Poisson purchasing until an exponential
  lifetime with rate mu ~ Gamma(s, beta);
- ``nbd`` NBD: Poisson purchasing, no dropout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["PROCESSES", "Process", "draw_latent", "draw_purchases"]


@dataclass(frozen=True)
class Process:
    """A purchase process: its parameters, their default values (a published fit to the CDNOW sample, per
    week; none for the NBD, which has none), whether gaps are Erlang-k (else exponential), and how
    customers drop out."""

    params: tuple[str, ...]
    defaults: Mapping[str, float]
    erlang: bool = False
    dropout: str = "after purchase"  # or "at zero and after purchase", "lifetime", "never"


#: Every process, by the short name of the model it belongs to. Defaults: BG/NBD and Pareto/NBD from Fader,
#: Hardie & Lee (2005); MBG/NBD from Batislam et al.'s model on the same data; the CNBD-2 models from
#: BTYDplus on the same data (../shared/reference/cdnow.md and cnbdk.md).
PROCESSES: dict[str, Process] = {
    "bgnbd": Process(("r", "alpha", "a", "b"), {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}),
    "mbgnbd": Process(("r", "alpha", "a", "b"), {"r": 0.5248, "alpha": 6.1830, "a": 0.8914, "b": 1.6140},
                      dropout="at zero and after purchase"),
    "bgcnbd": Process(("k", "r", "alpha", "a", "b"),
                      {"k": 2, "r": 0.2269, "alpha": 1.4629, "a": 0.9440, "b": 2.0743}, erlang=True),
    "mbgcnbd": Process(("k", "r", "alpha", "a", "b"),
                       {"k": 2, "r": 0.5799, "alpha": 2.2882, "a": 1.1343, "b": 1.5848}, erlang=True,
                       dropout="at zero and after purchase"),
    "pnbd": Process(("r", "alpha", "s", "beta"), {"r": 0.5533, "alpha": 10.578, "s": 0.6062, "beta": 11.67},
                    dropout="lifetime"),
    "nbd": Process(("r", "alpha"), {}, dropout="never"),
}


def draw_latent(model: str, n: int, params: Mapping[str, float], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each customer's latent traits under ``model``: ``lambda_``, and ``p_dropout`` (the BG family), or
    ``mu_`` and the ``lifetime`` it implies (Pareto/NBD)."""
    process = PROCESSES[model]
    missing = set(process.params) - set(params)
    if missing:
        raise ValueError(f"params for {model} are missing {sorted(missing)}")
    if process.erlang and (isinstance(params["k"], bool) or not float(params["k"]).is_integer() or params["k"] < 1):
        raise ValueError(f"k must be a whole number >= 1, got {params['k']!r}")
    truth = {"lambda_": rng.gamma(params["r"], 1.0 / params["alpha"], n)}
    if process.dropout in ("after purchase", "at zero and after purchase"):
        truth["p_dropout"] = rng.beta(params["a"], params["b"], n)
    elif process.dropout == "lifetime":
        truth["mu_"] = rng.gamma(params["s"], 1.0 / params["beta"], n)
        truth["lifetime"] = rng.exponential(1.0 / np.maximum(truth["mu_"], 1e-300))
    return truth


def draw_purchases(model: str, truth: Mapping[str, np.ndarray], params: Mapping[str, float], horizon: np.ndarray,
                   rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Purchase times of customers with latent traits ``truth`` (:func:`draw_latent`), each up to its
    ``horizon`` (units since the first purchase).

    Returns ``dropout_time`` (NaN if still active at the horizon) and ``n_repeat`` per customer, and the
    purchases as (customer index, time since the first purchase), the first purchase (time 0) included.
    """
    process = PROCESSES[model]
    lam = truth["lambda_"]
    n = len(lam)
    k = int(params["k"]) if process.erlang else 1
    pdrop = truth.get("p_dropout", np.zeros(n))
    lifetime = truth.get("lifetime", np.full(n, np.inf))
    dropout = np.where(lifetime <= horizon, lifetime, np.nan)
    n_repeat = np.zeros(n, dtype=np.int64)
    idx_parts, time_parts = [np.arange(n)], [np.zeros(n)]
    active = np.arange(n)
    if process.dropout == "at zero and after purchase":
        gone = rng.random(n) < pdrop
        dropout[gone] = 0.0
        active = active[~gone]
    t = np.zeros(n)
    scale = 1.0 / np.maximum(lam, 1e-300)
    while active.size:
        t[active] += rng.exponential(scale[active]) if k == 1 else rng.gamma(float(k), scale[active])
        inside = t[active] <= np.minimum(horizon[active], lifetime[active])
        active = active[inside]
        idx_parts.append(active)
        time_parts.append(t[active].copy())
        n_repeat[active] += 1
        dies = rng.random(active.size) < pdrop[active]
        dropout[active[dies]] = t[active[dies]]
        active = active[~dies]
    return {"dropout_time": dropout, "n_repeat": n_repeat}, np.concatenate(idx_parts), np.concatenate(time_parts)
