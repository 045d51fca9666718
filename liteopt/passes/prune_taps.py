"""conv2d / depthwise_conv2d whose outer filter rows or columns only ever read the zero padding => the same conv
with those taps cut from the filter and the paddings shrunk to match (same output size, same sums: the taps cut
multiplied zeros). DeepLabV3's ASPP convs (3x3, dilation 24 and 36 on a 14x14 map) become 1x1 convs; a 3x3 conv
on a 1x1 map (detection heads' last levels) too. Needs the input's H and W."""
from __future__ import annotations

from ..ir import Graph, Tensor
from ..ir.ops.conv import conv_out_size, tap_span
from .context import PassContext


def live_taps(size: int, k: int, stride: int, pad0: int, pad1: int, dilation: int) -> tuple[int, int] | None:
    """(first, last) filter tap along one axis that reads inside the input for some output position; None if
    every tap reads the padding for every output."""
    out = conv_out_size(size, k, stride, pad0, pad1, dilation)
    spans = [tap_span(size, out, stride, pad0, i * dilation) for i in range(k)]
    live = [i for i, (first, last) in enumerate(spans) if last > first]
    return (live[0], live[-1]) if live else None


def prune_taps(graph: Graph, ctx: PassContext) -> None:
    for n in graph.nodes:
        if n.op not in ("conv2d", "depthwise_conv2d") or len(n.inputs) < 2:
            continue
        w, x = graph.tensors[n.inputs[1]], graph.tensors[n.inputs[0]].shape
        if w.data is None or w.quant is not None or x is None or len(x) != 4 or \
                not all(isinstance(d, int) for d in x[2:]):
            continue
        kh, kw = w.data.shape[2:]
        (sh, sw), (pt, pb, pl, pr), (dh, dw) = n.attrs["strides"], n.attrs["paddings"], n.attrs["dilations"]
        rows, cols = live_taps(x[2], kh, sh, pt, pb, dh), live_taps(x[3], kw, sw, pl, pr, dw)
        if rows is None or cols is None or (rows, cols) == ((0, kh - 1), (0, kw - 1)):
            continue
        (i0, i1), (j0, j1) = rows, cols
        paddings = (pt - i0 * dh, pb - (kh - 1 - i1) * dh, pl - j0 * dw, pr - (kw - 1 - j1) * dw)
        if min(paddings) < 0:
            ctx.record.miss(f"prune_taps at {n.name}: not applied: the live taps start inside the input "
                            f"(paddings would be {paddings})")
            continue
        name = f"{n.name}/pruned_filter"
        while name in graph.tensors:
            name += "_"
        data = w.data[:, :, i0:i1 + 1, j0:j1 + 1].copy()
        graph.tensors[name] = Tensor(name, w.dtype, tuple(data.shape), data)
        n.inputs[1] = name
        n.attrs = dict(n.attrs, paddings=paddings, dilations=(dh if i1 > i0 else 1, dw if j1 > j0 else 1))
        ctx.record.hit()
    graph.prune()
