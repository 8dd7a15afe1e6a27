"""PyTorch reference for the GPU check: the same two X-Nets as XNet.GpuCheck, written the way the paper's code runs them
(every expander convolution multiplies a dense weight by a 0/1 mask on each forward pass), trained on the same kind of
CIFAR-shaped random data, printing training images/s.

    python3 pytorch_reference.py [--device cuda|cpu] [--images N] [--batch-size N] [--epochs N]

Written for this project (MIT); it re-implements the published architecture, it does not copy the seed repository.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class MaskedExpanderConv2d(nn.Module):
    """Dense weight times a fixed mask: output o sees D = max(1, floor(C_in / e)) random input channels."""

    def __init__(self, c_in, c_out, kernel, compression, stride=1, padding=0):
        super().__init__()
        degree = max(1, int(c_in // compression))
        mask = torch.zeros(c_out, c_in)
        for o in range(c_out):
            mask[o, torch.randperm(c_in)[:degree]] = 1
        self.register_buffer("mask", mask[:, :, None, None].expand(c_out, c_in, kernel, kernel).contiguous())
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.stride, self.padding = stride, padding

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, None, self.stride, self.padding)


def conv(c_in, c_out, kernel, compression, stride=1, padding=0):
    if compression is None:
        return nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
    return MaskedExpanderConv2d(c_in, c_out, kernel, compression, stride, padding)


class BasicBlock(nn.Module):
    def __init__(self, c_in, width, stride, compression):
        super().__init__()
        self.conv1 = conv(c_in, width, 3, compression, stride, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv(width, width, 3, compression, 1, 1)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = None
        if stride != 1 or c_in != width:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, width, 1, stride, bias=False), nn.BatchNorm2d(width))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNetCifar(nn.Module):
    """ResNet-20 for CIFAR (16, 32, 64 channels, 1x1 projection shortcuts); expander 3x3 convs in the residual branches."""

    def __init__(self, depth=20, compression=4, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, c = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(BasicBlock(c, width, stride if i == 0 else 1, compression))
                c = width
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class DenseLayer(nn.Module):
    def __init__(self, c_in, growth, compression):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(c_in), conv(c_in, 4 * growth, 1, compression)
        self.norm2, self.conv2 = nn.BatchNorm2d(4 * growth), conv(4 * growth, growth, 3, compression, 1, 1)

    def forward(self, x):
        out = self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))
        return torch.cat([x, out], 1)


class DenseNetBcCifar(nn.Module):
    """DenseNet-BC-40 with growth k; expander bottleneck convs and transitions (the README's cost variant)."""

    def __init__(self, depth=40, growth=24, compression=2, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        c = 2 * growth
        self.conv1 = nn.Conv2d(3, c, 3, 1, 1, bias=False)
        stages = []
        for b in range(3):
            for _ in range(n):
                stages.append(DenseLayer(c, growth, compression))
                c += growth
            if b < 2:
                stages += [nn.BatchNorm2d(c), nn.ReLU(), conv(c, c // 2, 1, compression), nn.AvgPool2d(2)]
                c //= 2
        self.blocks = nn.Sequential(*stages)
        self.bn1 = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.blocks(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def train_rate(name, model, device, images, batch_size, epochs):
    generator = torch.Generator().manual_seed(1)
    data = torch.randint(0, 256, (images, 3, 32, 32), generator=generator).float()
    labels = torch.arange(images) % 10
    data = (data - 120.0) / 60.0
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    rate = 0.0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(images, generator=generator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        total = 0.0
        for i in range(0, images, batch_size):
            index = order[i:i + batch_size]
            x = data[index].pin_memory().to(device, non_blocking=True) if device.type == "cuda" else data[index]
            y = labels[index].to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rate = images / (time.perf_counter() - start)
        print(f"  pytorch {name} epoch {epoch + 1}: loss {total / images:.4f}, {rate:.0f} img/s", flush=True)
    return rate


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"pytorch {torch.__version__} on {name}, cuDNN {torch.backends.cudnn.version() if device.type == 'cuda' else '-'}")
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    for label, model in (("x-resnet-20-4", ResNetCifar(20, 4)), ("x-densenet-bc-40-24-2", DenseNetBcCifar(40, 24, 2))):
        rate = train_rate(label, model, device, args.images, args.batch_size, args.epochs)
        print(f"RESULT pytorch {label} device={device} train_images_per_second={rate:.0f}", flush=True)


if __name__ == "__main__":
    main()
