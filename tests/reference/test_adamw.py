import numpy as np
import torch

from rnnkit.reference import AdamW


def test_adamw_matches_torch_with_decay_on_matrices_only():
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    tw = torch.tensor(params["w"].copy(), requires_grad=True)
    tb = torch.tensor(params["b"].copy(), requires_grad=True)
    ref = torch.optim.AdamW([{"params": [tw], "weight_decay": 0.1}, {"params": [tb], "weight_decay": 0.0}],
                            lr=0.01, betas=(0.9, 0.99))
    opt = AdamW(params, lr=0.01, betas=(0.9, 0.99), weight_decay=0.1, decay={"w"})
    for step in range(6):
        gw, gb = rng.standard_normal((3, 4)), rng.standard_normal(4)
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        opt.lr = ref.param_groups[0]["lr"] = ref.param_groups[1]["lr"] = 0.01 * (0.9 ** step)  # a schedule
        ref.step()
        opt.step({"w": gw.copy(), "b": gb.copy()})
    np.testing.assert_allclose(params["w"], tw.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(params["b"], tb.detach().numpy(), rtol=0, atol=1e-12)
