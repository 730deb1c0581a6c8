"""Training nodes: ``Optimize`` runs the loss's upstream sub-graph in a loop and steps the learnable tensors."""
from __future__ import annotations

import torch

from nodegraph.spec import Choice, Float, Input, Int, Output, Texts, Trainer, node
from nodegraph.values import LossHistory


def _optimize_checks(p: dict) -> list[tuple[str, str]]:
    problems = []
    if p["decay_at"] is not None and not 0 < p["decay_at"] < 1:
        problems.append(("decay_at", f"is a fraction of the run in (0, 1), got {p['decay_at']}"))
    return problems


def _optimize_export(x) -> dict:
    """The training loop written out: seed, learnable tensors, optimizer with one parameter group per learnable
    node, then per iteration the dynamic nodes, the weighted losses, zero_grad/backward/step, the lr decay,
    a tqdm line with the loss terms, the preview dumps and the early stop (the node's own loop, step by step)."""
    loop, p = x.loop, x.params
    x.skip("preview_every")  # the editor's preview rate; the script has --preview-every
    x.imports("from tqdm import tqdm")
    hist = loop.history
    groups = ", ".join(f"{{'params': [{', '.join(params)}]}}" for _, params in loop.groups)
    make = [f"params = [{groups}]  # one group per learnable node: " + ", ".join(n for n, _ in loop.groups),
            f"if {p['optimizer']} == 'adam':",
            f"    optimizer = torch.optim.Adam(params, lr={p['lr']})",
            "else:",
            f"    optimizer = torch.optim.SGD(params, lr={p['lr']}, momentum={p['momentum']})"]
    x.line(f"torch.manual_seed({p['seed']})", *loop.init)
    x.line(*(f"{var}.requires_grad_(False)  # not trained by this stage" for var in loop.frozen))
    if not loop.lazy:
        x.line(*make)
    x.line(f"decay_step = int({p['decay_at']} * {p['iterations']}) if {p['decay_at']} is not None else None",
           f"{hist} = {{{', '.join(repr(k) + ': []' for k in ['total', *loop.terms])}}}",
           f"bar = tqdm(range({p['iterations']}), desc={x.node_id!r})",
           "for i in bar:")
    x.line(*loop.indented(loop.body, 1))
    x.line("",
           f"    loss = {loop.loss.total}",
           f"    {hist}['total'].append(loss.item())",
           *(f"    {hist}[{name!r}].append({var}.item())" for name, var in loop.loss.terms.items()))
    if loop.lazy:  # the learnables exist once the first iteration has made them
        x.line("    if i == 0:", *loop.indented(make, 2))
    x.line("    optimizer.zero_grad()",
           "    loss.backward()",
           "    optimizer.step()",
           "    if decay_step is not None and i + 1 == decay_step:",
           "        for group in optimizer.param_groups:",
           f"            group['lr'] *= {p['decay_factor']}",
           f"    bar.set_postfix({{k: f'{{v[-1]:.4g}}' for k, v in {hist}.items()}}, refresh=False)")
    if loop.taps:
        x.line("    if args.preview_every and (i + 1) % args.preview_every == 0:",
               "        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):",
               *loop.indented(loop.taps, 3))
    x.line(f"    if {p['stop_below']} is not None and {hist}['total'][-1] < {p['stop_below']}:",
           "        break",
           "bar.close()")
    x.line(*(f"{var}.requires_grad_(True)" for var in loop.frozen))
    return {"history": hist, "final_loss": f"{hist}['total'][-1]", "done": "None"}


@node(
    category="training",
    export=_optimize_export,
    trainer=Trainer(loss="loss", done="done", train="train", after="after"),
    inputs=[
        Input("loss", "Loss", "one or more losses; their weighted sum is minimised", multiple=True),
        Input("after", "Trained", "a previous stage's `done`: start from what it trained", optional=True),
    ],
    params=[
        Choice("optimizer", "adam", "Adam, or SGD with momentum", choices=("adam", "sgd")),
        Float("lr", 0.01, "learning rate", min=1e-12, max=1e3, log=True),
        Float("momentum", 0.9, "SGD momentum (ignored by Adam)", min=0.0, max=1.0),
        Int("iterations", 200, "how many steps", min=1, max=10_000_000),
        Float("decay_at", None, "multiply the lr by decay_factor once this fraction of the run is done "
                                "(e.g. 0.75)", optional=True),
        Float("decay_factor", 0.1, "lr multiplier at decay_at", min=0.0, max=1.0),
        Float("stop_below", None, "stop early once the total loss is below this", optional=True),
        Int("seed", 0, "seeds torch before the first iteration, so a run is repeatable", min=0),
        Int("preview_every", 10, "evaluate preview taps every this many iterations (0: never)", min=0),
        Texts("train", [], "node ids (or node.tensor) to train; empty: every learnable node upstream"),
    ],
    outputs=[
        Output("history", "LossHistory", "per-iteration total and per-term losses"),
        Output("final_loss", "Scalar", "the last total loss"),
        Output("done", "Trained", "wire to a later stage's `after`"),
    ],
    checks=_optimize_checks,
)
def Optimize(ctx, loss, after, optimizer, lr, momentum, iterations, decay_at, decay_factor, stop_below, seed,
             preview_every, train):
    """Minimise the connected losses by gradient descent on every learnable node upstream of them.

    Each iteration evaluates the sub-graph that feeds ``loss``: nodes that depend on nothing learnable or
    stochastic are computed once and reused, the rest run every iteration. Nodes outside the loop that read a
    learnable node run after training and see the trained values. Chain stages (e.g. silhouette, then
    texture) by wiring one stage's ``done`` to the next stage's ``after``; ``train`` picks what a stage updates.
    """
    loop = ctx.loop
    torch.manual_seed(seed)
    value = loss(0)
    params = loop.parameters()
    if not params:
        ctx.fail("loss", "no learnable tensor reaches the loss with a gradient")
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    decay_step = int(decay_at * iterations) if decay_at is not None else None
    for i in range(iterations):
        if i > 0:
            value = loss(i)
        opt.zero_grad()
        value.total.backward()
        opt.step()
        if decay_step is not None and i + 1 == decay_step:
            for group in opt.param_groups:
                group["lr"] *= decay_factor
        loop.progress(i + 1, iterations, lr=opt.param_groups[0]["lr"], force=i + 1 == iterations)
        if preview_every and (i + 1) % preview_every == 0:
            loop.tap(i + 1)
        if stop_below is not None and float(value.total.detach()) < stop_below:
            loop.progress(i + 1, iterations, lr=opt.param_groups[0]["lr"], force=True)
            break
    history = LossHistory(loop.history_floats())
    return {"history": history, "final_loss": history.series["total"][-1], "done": None}
