"""Adan: adaptive Nesterov momentum (Xie et al., 2022, arXiv 2208.06677), the optimiser FineDance trains with.

Per parameter, with gradient g_k and the previous gradient g_{k-1} (g_0 := g_1):

    m_k = β1·m_{k−1} + (1 − β1)·g_k                               (first moment)
    v_k = β2·v_{k−1} + (1 − β2)·(g_k − g_{k−1})                   (gradient-difference moment)
    n_k = β3·n_{k−1} + (1 − β3)·(g_k + β2·(g_k − g_{k−1}))²       (second moment)
    θ  ← (θ − lr·(m̂_k + β2·v̂_k) / (√n̂_k + ε)) / (1 + lr·λ)

(β written as decay rates, i.e. 1 − the paper's β; hats are the usual bias corrections; λ is the
decoupled weight decay.) Defaults follow the paper: betas (0.98, 0.92, 0.99), eps 1e-8.
"""
from __future__ import annotations

import torch


class Adan(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 4e-4, betas=(0.98, 0.92, 0.99), eps: float = 1e-8,
                 weight_decay: float = 0.02):
        if lr <= 0 or eps <= 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid Adan settings: lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2, b3 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                    state["n"] = torch.zeros_like(p)
                    state["prev_grad"] = g.clone()
                state["step"] += 1
                k = state["step"]
                diff = g - state["prev_grad"]
                state["m"].mul_(b1).add_(g, alpha=1 - b1)
                state["v"].mul_(b2).add_(diff, alpha=1 - b2)
                state["n"].mul_(b3).addcmul_(g + b2 * diff, g + b2 * diff, value=1 - b3)
                m_hat = state["m"] / (1 - b1 ** k)
                v_hat = state["v"] / (1 - b2 ** k)
                n_hat = state["n"] / (1 - b3 ** k)
                p.sub_((m_hat + b2 * v_hat) / (n_hat.sqrt() + eps), alpha=lr)
                p.div_(1 + lr * wd)
                state["prev_grad"].copy_(g)
        return loss
