#!/usr/bin/env python3
"""Writes the prototxts of crema's model zoo (models/*/), written from the published
architectures.

    python3 models/generate_zoo.py          # rewrites every generated file
    python3 models/generate_zoo.py --check  # exits 1 if a file on disk differs

For every model it writes train_val.prototxt (Data layers reading LMDBs under data/, which
the user prepares; see each README), deploy.prototxt (Input layers) and solver.prototxt;
models/resnet50_features has a deploy net only. models/lenet is hand-written and left
alone. The READMEs are hand-written; their parameter and FLOP counts come from
`crema summarize --model models/NAME/deploy.prototxt`.

Python 3 standard library only.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------------------
# A tiny text-format writer. A message is a dict (insertion ordered); a list value is a
# repeated field; Enum values are written bare; strings are quoted; bools lower case.
# ---------------------------------------------------------------------------------------
class Enum(str):
    pass


def _scalar(value):
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def _fields(message):
    for key, value in message.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            yield key, item


def _one_line(message):
    """The message on one line, or None when it nests messages."""
    parts = []
    for key, value in _fields(message):
        if isinstance(value, dict):
            inner = _one_line(value)
            if inner is None:
                return None
            parts.append("%s %s" % (key, inner))
        else:
            parts.append("%s: %s" % (key, _scalar(value)))
    return "{ " + " ".join(parts) + " }" if parts else "{ }"


def render(message, indent=0):
    pad = "  " * indent
    lines = []
    for key, value in _fields(message):
        if isinstance(value, dict):
            inline = _one_line(value)
            if inline is not None and len(pad) + len(key) + 1 + len(inline) <= 92:
                lines.append("%s%s %s" % (pad, key, inline))
            else:
                lines.append("%s%s {" % (pad, key))
                lines.extend(render(value, indent + 1))
                lines.append("%s}" % pad)
        else:
            lines.append("%s%s: %s" % (pad, key, _scalar(value)))
    return lines


def net_text(name, comment, layers):
    out = ["# " + line if line else "#" for line in comment.strip("\n").split("\n")]
    out.append('name: "%s"' % name)
    for layer in layers:
        out.append("layer {")
        out.extend(render(layer, 1))
        out.append("}")
    return "\n".join(out) + "\n"


def solver_text(comment, fields):
    out = ["# " + line if line else "#" for line in comment.strip("\n").split("\n")]
    out.extend(render(fields))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# Layer helpers
# ---------------------------------------------------------------------------------------
TRAIN = {"phase": Enum("TRAIN")}
TEST = {"phase": Enum("TEST")}


def layer(name, type_, bottom=None, top=None, **fields):
    msg = {"name": name, "type": type_}
    if bottom is not None:
        msg["bottom"] = bottom
    if top is not None:
        msg["top"] = top
    msg.update(fields)
    return msg


def filler(type_, **kw):
    msg = {"type": type_}
    msg.update(kw)
    return msg


def learn_specs(bias=True, lr=(1, 2), decay=(1, 0)):
    specs = [{"lr_mult": lr[0], "decay_mult": decay[0]}]
    if bias:
        specs.append({"lr_mult": lr[1], "decay_mult": decay[1]})
    return specs


class Builder:
    """Collects layers; `train` decides whether ParamSpecs are written (train_val) or not
    (deploy). Fillers are written in both so that a deploy net built without weights
    (crema time / summarize) holds sensible random values."""

    def __init__(self, train):
        self.train = train
        self.layers = []

    def add(self, msg):
        self.layers.append(msg)
        return msg["top"] if "top" in msg else None

    def conv(self, name, bottom, num_output, kernel, stride=1, pad=0, group=1, bias=True,
             weight_filler=None, bias_filler=None, top=None):
        p = {"num_output": num_output}
        if not bias:
            p["bias_term"] = False
        if pad:
            p["pad"] = pad
        p["kernel_size"] = kernel
        if stride != 1:
            p["stride"] = stride
        if group != 1:
            p["group"] = group
        p["weight_filler"] = weight_filler or filler("xavier")
        if bias:
            p["bias_filler"] = bias_filler or filler("constant", value=0.0)
        fields = {}
        if self.train:
            fields["param"] = learn_specs(bias)
        fields["convolution_param"] = p
        return self.add(layer(name, "Convolution", bottom, top or name, **fields))

    def ip(self, name, bottom, num_output, weight_filler=None, bias_filler=None,
           decay=(1, 0)):
        fields = {}
        if self.train:
            fields["param"] = learn_specs(True, decay=decay)
        fields["inner_product_param"] = {
            "num_output": num_output,
            "weight_filler": weight_filler or filler("xavier"),
            "bias_filler": bias_filler or filler("constant", value=0.0),
        }
        return self.add(layer(name, "InnerProduct", bottom, name, **fields))

    def relu(self, name, blob):
        return self.add(layer(name, "ReLU", blob, blob))

    def pool(self, name, bottom, method, kernel=None, stride=None, pad=0, global_pool=False):
        p = {"pool": Enum(method)}
        if global_pool:
            p["global_pooling"] = True
        else:
            p["kernel_size"] = kernel
            p["stride"] = stride
            if pad:
                p["pad"] = pad
        return self.add(layer(name, "Pooling", bottom, name, pooling_param=p))

    def lrn(self, name, bottom, local_size=5, alpha=0.0001, beta=0.75, within=False):
        p = {"local_size": local_size, "alpha": alpha, "beta": beta}
        if within:
            p["norm_region"] = Enum("WITHIN_CHANNEL")
        return self.add(layer(name, "LRN", bottom, name, lrn_param=p))

    def dropout(self, name, blob, ratio):
        return self.add(layer(name, "Dropout", blob, blob, dropout_param={"dropout_ratio": ratio}))

    def concat(self, name, bottoms, axis=None):
        fields = {"concat_param": {"axis": axis}} if axis is not None else {}
        return self.add(layer(name, "Concat", bottoms, name, **fields))

    def bn_scale(self, suffix, blob, deploy_global=True):
        """Caffe's BatchNorm (statistics only) + Scale (learned gamma, beta), in place."""
        bn = {}
        if self.train:
            # The three statistics blobs are not learned.
            bn["param"] = [{"lr_mult": 0, "decay_mult": 0}] * 3
        else:
            bn["batch_norm_param"] = {"use_global_stats": deploy_global}
        self.add(layer("bn" + suffix, "BatchNorm", blob, blob, **bn))
        sc = {}
        if self.train:
            sc["param"] = [{"lr_mult": 1, "decay_mult": 0}, {"lr_mult": 1, "decay_mult": 0}]
        sc["scale_param"] = {"bias_term": True}
        self.add(layer("scale" + suffix, "Scale", blob, blob, **sc))
        return blob

    def softmax_loss(self, bottom, label="label", name="loss", weight=None):
        fields = {"loss_weight": weight} if weight is not None else {}
        return self.add(layer(name, "SoftmaxWithLoss", [bottom, label], name, **fields))

    def accuracy(self, bottom, label="label", name="accuracy", top_k=None):
        fields = {"include": TEST}
        if top_k:
            fields["accuracy_param"] = {"top_k": top_k}
        return self.add(layer(name, "Accuracy", [bottom, label], name, **fields))

    def softmax(self, bottom, name="prob"):
        return self.add(layer(name, "Softmax", bottom, name))


def data_layers(name, train_source, test_source, train_batch, test_batch, transform_train,
                transform_test, label=True):
    tops = ["data", "label"] if label else ["data"]
    out = []
    for phase, source, batch, transform in ((TRAIN, train_source, train_batch, transform_train),
                                            (TEST, test_source, test_batch, transform_test)):
        msg = layer(name, "Data", None, tops, include=phase)
        if transform:
            msg["transform_param"] = transform
        msg["data_param"] = {"source": source, "batch_size": batch, "backend": Enum("LMDB")}
        out.append(msg)
    return out


def input_layer(shape, name="data"):
    return layer(name, "Input", None, name, input_param={"shape": {"dim": list(shape)}})


IMAGENET_MEAN = [104.0, 117.0, 123.0]  # BGR, the ILSVRC-2012 training-set means


def imagenet_data(crop, train_batch, test_batch, scale=None):
    def transform(mirror):
        t = {"mirror": mirror, "crop_size": crop, "mean_value": IMAGENET_MEAN}
        if scale:
            t["scale"] = scale
        return t

    return data_layers("data", "data/ilsvrc12/ilsvrc12_train_lmdb",
                       "data/ilsvrc12/ilsvrc12_val_lmdb", train_batch, test_batch,
                       transform(True), transform(False))


IMAGENET_DATA_NOTE = """\
Training data: data/ilsvrc12/ilsvrc12_{train,val}_lmdb, LMDBs of Caffe Datums (BGR uint8,
256x256, label = class index 0..999), which the user prepares (see README.md)."""


# ---------------------------------------------------------------------------------------
# CIFAR-10: Caffe's "quick" and "full" examples
# ---------------------------------------------------------------------------------------
CIFAR_MEAN = [125.0, 123.0, 114.0]  # per-channel means of the CIFAR-10 training set (RGB)


def cifar_data(train_batch, test_batch):
    transform = {"mean_value": CIFAR_MEAN}
    return data_layers("cifar", "data/cifar10/cifar10_train_lmdb",
                       "data/cifar10/cifar10_test_lmdb", train_batch, test_batch, transform,
                       transform)


def cifar10_quick(train):
    b = Builder(train)
    if train:
        b.layers += cifar_data(100, 100)
    else:
        b.add(input_layer([1, 3, 32, 32]))
    g = lambda std: filler("gaussian", std=std)
    x = b.conv("conv1", "data", 32, 5, pad=2, weight_filler=g(0.0001))
    x = b.pool("pool1", x, "MAX", 3, 2)
    b.relu("relu1", x)
    x = b.conv("conv2", x, 32, 5, pad=2, weight_filler=g(0.01))
    b.relu("relu2", x)
    x = b.pool("pool2", x, "AVE", 3, 2)
    x = b.conv("conv3", x, 64, 5, pad=2, weight_filler=g(0.01))
    b.relu("relu3", x)
    x = b.pool("pool3", x, "AVE", 3, 2)
    x = b.ip("ip1", x, 64, weight_filler=g(0.1))
    x = b.ip("ip2", x, 10, weight_filler=g(0.1))
    if train:
        b.accuracy(x)
        b.softmax_loss(x)
    else:
        b.softmax(x)
    return b.layers


def cifar10_full(train):
    b = Builder(train)
    if train:
        b.layers += cifar_data(100, 100)
    else:
        b.add(input_layer([1, 3, 32, 32]))
    g = lambda std: filler("gaussian", std=std)
    x = b.conv("conv1", "data", 32, 5, pad=2, weight_filler=g(0.0001))
    x = b.pool("pool1", x, "MAX", 3, 2)
    b.relu("relu1", x)
    x = b.lrn("norm1", x, local_size=3, alpha=5e-05, beta=0.75, within=True)
    x = b.conv("conv2", x, 32, 5, pad=2, weight_filler=g(0.01))
    b.relu("relu2", x)
    x = b.pool("pool2", x, "AVE", 3, 2)
    x = b.lrn("norm2", x, local_size=3, alpha=5e-05, beta=0.75, within=True)
    x = b.conv("conv3", x, 64, 5, pad=2, weight_filler=g(0.01))
    b.relu("relu3", x)
    x = b.pool("pool3", x, "AVE", 3, 2)
    # Caffe's example regularises the only classifier strongly (decay_mult 250).
    x = b.ip("ip1", x, 10, weight_filler=g(0.01), decay=(250, 0))
    if train:
        b.accuracy(x)
        b.softmax_loss(x)
    else:
        b.softmax(x)
    return b.layers


# ---------------------------------------------------------------------------------------
# AlexNet / CaffeNet (Krizhevsky et al. 2012, with Caffe's two-group convolutions)
# ---------------------------------------------------------------------------------------
def alexnet_like(train, caffenet):
    b = Builder(train)
    if train:
        b.layers += imagenet_data(227, 256, 50)
    else:
        b.add(input_layer([10, 3, 227, 227]))
    g = lambda std: filler("gaussian", std=std)
    c = lambda v: filler("constant", value=v)
    x = b.conv("conv1", "data", 96, 11, stride=4, weight_filler=g(0.01), bias_filler=c(0.0))
    b.relu("relu1", x)
    if caffenet:  # CaffeNet pools before normalising
        x = b.pool("pool1", x, "MAX", 3, 2)
        x = b.lrn("norm1", x)
    else:
        x = b.lrn("norm1", x)
        x = b.pool("pool1", x, "MAX", 3, 2)
    x = b.conv("conv2", x, 256, 5, pad=2, group=2, weight_filler=g(0.01), bias_filler=c(0.1))
    b.relu("relu2", x)
    if caffenet:
        x = b.pool("pool2", x, "MAX", 3, 2)
        x = b.lrn("norm2", x)
    else:
        x = b.lrn("norm2", x)
        x = b.pool("pool2", x, "MAX", 3, 2)
    x = b.conv("conv3", x, 384, 3, pad=1, weight_filler=g(0.01), bias_filler=c(0.0))
    b.relu("relu3", x)
    x = b.conv("conv4", x, 384, 3, pad=1, group=2, weight_filler=g(0.01), bias_filler=c(0.1))
    b.relu("relu4", x)
    x = b.conv("conv5", x, 256, 3, pad=1, group=2, weight_filler=g(0.01), bias_filler=c(0.1))
    b.relu("relu5", x)
    x = b.pool("pool5", x, "MAX", 3, 2)
    x = b.ip("fc6", x, 4096, weight_filler=g(0.005), bias_filler=c(0.1))
    b.relu("relu6", x)
    b.dropout("drop6", x, 0.5)
    x = b.ip("fc7", x, 4096, weight_filler=g(0.005), bias_filler=c(0.1))
    b.relu("relu7", x)
    b.dropout("drop7", x, 0.5)
    x = b.ip("fc8", x, 1000, weight_filler=g(0.01), bias_filler=c(0.0))
    if train:
        b.accuracy(x)
        b.accuracy(x, name="accuracy_top5", top_k=5)
        b.softmax_loss(x)
    else:
        b.softmax(x)
    return b.layers


# ---------------------------------------------------------------------------------------
# VGG-16 (Simonyan & Zisserman 2014, configuration D)
# ---------------------------------------------------------------------------------------
def vgg16(train):
    b = Builder(train)
    if train:
        b.layers += imagenet_data(224, 32, 25)
    else:
        b.add(input_layer([10, 3, 224, 224]))
    x = "data"
    stages = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
    for s, (width, repeat) in enumerate(stages, 1):
        for i in range(1, repeat + 1):
            name = "conv%d_%d" % (s, i)
            x = b.conv(name, x, width, 3, pad=1)
            b.relu("relu%d_%d" % (s, i), x)
        x = b.pool("pool%d" % s, x, "MAX", 2, 2)
    for name in ("fc6", "fc7"):
        x = b.ip(name, x, 4096, weight_filler=filler("gaussian", std=0.005),
                 bias_filler=filler("constant", value=0.1))
        b.relu("relu" + name[2:], x)
        b.dropout("drop" + name[2:], x, 0.5)
    x = b.ip("fc8", x, 1000, weight_filler=filler("gaussian", std=0.01))
    if train:
        b.accuracy(x)
        b.accuracy(x, name="accuracy_top5", top_k=5)
        b.softmax_loss(x)
    else:
        b.softmax(x)
    return b.layers


# ---------------------------------------------------------------------------------------
# GoogLeNet (Szegedy et al. 2014, Inception v1) with the two auxiliary classifiers in
# train_val (loss weight 0.3 each, as in the paper); deploy keeps the main classifier only.
# ---------------------------------------------------------------------------------------
INCEPTIONS = [
    # name, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    None,  # max pool 3/2
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    None,
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
]


def googlenet(train):
    b = Builder(train)
    if train:
        b.layers += imagenet_data(224, 32, 50)
    else:
        b.add(input_layer([10, 3, 224, 224]))
    bf = filler("constant", value=0.2)
    conv = lambda name, bottom, n, k, **kw: b.conv(name, bottom, n, k, bias_filler=bf, **kw)
    x = conv("conv1/7x7_s2", "data", 64, 7, stride=2, pad=3)
    b.relu("conv1/relu_7x7", x)
    x = b.pool("pool1/3x3_s2", x, "MAX", 3, 2)
    x = b.lrn("pool1/norm1", x)
    x = conv("conv2/3x3_reduce", x, 64, 1)
    b.relu("conv2/relu_3x3_reduce", x)
    x = conv("conv2/3x3", x, 192, 3, pad=1)
    b.relu("conv2/relu_3x3", x)
    x = b.lrn("conv2/norm2", x)
    x = b.pool("pool2/3x3_s2", x, "MAX", 3, 2)
    pools = iter(["pool3/3x3_s2", "pool4/3x3_s2"])
    for spec in INCEPTIONS:
        if spec is None:
            x = b.pool(next(pools), x, "MAX", 3, 2)
            continue
        tag, n1, r3, n3, r5, n5, pp = spec
        p = "inception_%s/" % tag
        branches = []
        y = conv(p + "1x1", x, n1, 1)
        b.relu(p + "relu_1x1", y)
        branches.append(y)
        y = conv(p + "3x3_reduce", x, r3, 1)
        b.relu(p + "relu_3x3_reduce", y)
        y = conv(p + "3x3", y, n3, 3, pad=1)
        b.relu(p + "relu_3x3", y)
        branches.append(y)
        y = conv(p + "5x5_reduce", x, r5, 1)
        b.relu(p + "relu_5x5_reduce", y)
        y = conv(p + "5x5", y, n5, 5, pad=2)
        b.relu(p + "relu_5x5", y)
        branches.append(y)
        y = b.pool(p + "pool", x, "MAX", 3, 1, pad=1)
        y = conv(p + "pool_proj", y, pp, 1)
        b.relu(p + "relu_pool_proj", y)
        branches.append(y)
        x = b.concat(p + "output", branches)
        if train and tag in ("4a", "4d"):
            aux = "loss1" if tag == "4a" else "loss2"
            a = b.pool(aux + "/ave_pool", x, "AVE", 5, 3)
            a = conv(aux + "/conv", a, 128, 1)
            b.relu(aux + "/relu_conv", a)
            a = b.ip(aux + "/fc", a, 1024, bias_filler=bf)
            b.relu(aux + "/relu_fc", a)
            b.dropout(aux + "/drop_fc", a, 0.7)
            a = b.ip(aux + "/classifier", a, 1000)
            b.softmax_loss(a, name=aux + "/loss", weight=0.3)
    x = b.pool("pool5/7x7_s1", x, "AVE", 7, 1)
    b.dropout("pool5/drop_7x7_s1", x, 0.4)
    x = b.ip("loss3/classifier", x, 1000)
    if train:
        b.accuracy(x, name="loss3/top-1")
        b.accuracy(x, name="loss3/top-5", top_k=5)
        b.softmax_loss(x, name="loss3/loss3", weight=1.0)
    else:
        b.softmax(x)
    return b.layers


# ---------------------------------------------------------------------------------------
# ResNet-50 (He et al. 2015), the layout of the authors' Caffe release: convolutions
# without bias, each followed by BatchNorm + Scale; the stride sits on the first 1x1 of a
# stage's first block; that block has a projection shortcut (branch1).
# ---------------------------------------------------------------------------------------
RESNET50_STAGES = [(2, 3, 64, 256, 1), (3, 4, 128, 512, 2), (4, 6, 256, 1024, 2),
                   (5, 3, 512, 2048, 2)]


def resnet50_trunk(b):
    msra = filler("msra")
    x = b.conv("conv1", "data", 64, 7, stride=2, pad=3, bias=False, weight_filler=msra)
    b.bn_scale("_conv1", x)
    b.relu("conv1_relu", x)
    x = b.pool("pool1", x, "MAX", 3, 2)
    for stage, blocks, mid, out, stride in RESNET50_STAGES:
        for i in range(blocks):
            tag = "%d%s" % (stage, "abcdef"[i])
            s = stride if i == 0 else 1
            if i == 0:
                short = b.conv("res%s_branch1" % tag, x, out, 1, stride=s, bias=False,
                               weight_filler=msra)
                b.bn_scale("%s_branch1" % tag, short)
            else:
                short = x
            y = b.conv("res%s_branch2a" % tag, x, mid, 1, stride=s, bias=False,
                       weight_filler=msra)
            b.bn_scale("%s_branch2a" % tag, y)
            b.relu("res%s_branch2a_relu" % tag, y)
            y = b.conv("res%s_branch2b" % tag, y, mid, 3, pad=1, bias=False, weight_filler=msra)
            b.bn_scale("%s_branch2b" % tag, y)
            b.relu("res%s_branch2b_relu" % tag, y)
            y = b.conv("res%s_branch2c" % tag, y, out, 1, bias=False, weight_filler=msra)
            b.bn_scale("%s_branch2c" % tag, y)
            x = b.add(layer("res" + tag, "Eltwise", [short, y], "res" + tag))
            b.relu("res%s_relu" % tag, x)
    return b.pool("pool5", x, "AVE", 7, 1)


def resnet50(train):
    b = Builder(train)
    if train:
        b.layers += imagenet_data(224, 32, 25)
    else:
        b.add(input_layer([10, 3, 224, 224]))
    x = resnet50_trunk(b)
    x = b.ip("fc1000", x, 1000, weight_filler=filler("msra"))
    if train:
        b.accuracy(x)
        b.accuracy(x, name="accuracy_top5", top_k=5)
        b.softmax_loss(x)
    else:
        b.softmax(x)
    return b.layers


def resnet50_features(train):
    assert not train
    b = Builder(False)
    b.add(input_layer([32, 3, 224, 224]))
    x = resnet50_trunk(b)
    b.add(layer("features", "Flatten", x, "features"))
    return b.layers


# ---------------------------------------------------------------------------------------
# SqueezeNet 1.1 (Iandola et al. 2016; the v1.1 revision of the authors' release)
# ---------------------------------------------------------------------------------------
def squeezenet11(train):
    b = Builder(train)
    if train:
        b.layers += imagenet_data(227, 32, 25)
    else:
        b.add(input_layer([10, 3, 227, 227]))
    x = b.conv("conv1", "data", 64, 3, stride=2)
    b.relu("relu_conv1", x)
    x = b.pool("pool1", x, "MAX", 3, 2)
    fires = [(2, 16, 64), (3, 16, 64), "pool3", (4, 32, 128), (5, 32, 128), "pool5",
             (6, 48, 192), (7, 48, 192), (8, 64, 256), (9, 64, 256)]
    for fire in fires:
        if isinstance(fire, str):
            x = b.pool(fire, x, "MAX", 3, 2)
            continue
        n, squeeze, expand = fire
        p = "fire%d/" % n
        s = b.conv(p + "squeeze1x1", x, squeeze, 1)
        b.relu(p + "relu_squeeze1x1", s)
        e1 = b.conv(p + "expand1x1", s, expand, 1)
        b.relu(p + "relu_expand1x1", e1)
        e3 = b.conv(p + "expand3x3", s, expand, 3, pad=1)
        b.relu(p + "relu_expand3x3", e3)
        x = b.concat(p + "concat", [e1, e3])
    b.dropout("drop9", x, 0.5)
    x = b.conv("conv10", x, 1000, 1, weight_filler=filler("gaussian", mean=0.0, std=0.01))
    b.relu("relu_conv10", x)
    x = b.pool("pool10", x, "AVE", global_pool=True)
    if train:
        b.accuracy(x)
        b.accuracy(x, name="accuracy_top5", top_k=5)
        b.softmax_loss(x)
    else:
        b.softmax(x)
    return b.layers


# ---------------------------------------------------------------------------------------
# MobileNet v1, width 1.0, 224x224 (Howard et al. 2017): depthwise 3x3 convolutions are
# Convolution layers with group == channels; every convolution is followed by
# BatchNorm + Scale + ReLU; convolutions have no bias.
# ---------------------------------------------------------------------------------------
MOBILENET_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                    (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def mobilenet_v1(train):
    b = Builder(train)
    if train:
        # The paper's preprocessing: inputs scaled to about [-1, 1].
        b.layers += imagenet_data(224, 64, 25, scale=0.017)
    else:
        b.add(input_layer([10, 3, 224, 224]))
    msra = filler("msra")
    x = b.conv("conv1", "data", 32, 3, stride=2, pad=1, bias=False, weight_filler=msra)
    b.bn_scale("_conv1", x)
    b.relu("relu1", x)
    channels = 32
    for i, (out, stride) in enumerate(MOBILENET_BLOCKS, 2):
        dw = "conv%d_dw" % i
        x = b.conv(dw, x, channels, 3, stride=stride, pad=1, group=channels, bias=False,
                   weight_filler=msra)
        b.bn_scale("_" + dw, x)
        b.relu("relu%d_dw" % i, x)
        pw = "conv%d_pw" % i
        x = b.conv(pw, x, out, 1, bias=False, weight_filler=msra)
        b.bn_scale("_" + pw, x)
        b.relu("relu%d_pw" % i, x)
        channels = out
    x = b.pool("pool6", x, "AVE", global_pool=True)
    x = b.ip("fc7", x, 1000, weight_filler=msra)
    if train:
        b.accuracy(x)
        b.accuracy(x, name="accuracy_top5", top_k=5)
        b.softmax_loss(x)
    else:
        b.softmax(x)
    return b.layers


# ---------------------------------------------------------------------------------------
# The classic framework comparison: a VGG-style CIFAR-10 CNN (same architecture as
# bench/vgg_cifar.prototxt), ResNet-50 feature extraction, and a GRU sentiment classifier
# on IMDB.
# ---------------------------------------------------------------------------------------
def vgg_cifar(train):
    b = Builder(train)
    if train:
        t = {"scale": 0.00390625}
        b.layers += data_layers("cifar", "data/cifar10/cifar10_train_lmdb",
                                "data/cifar10/cifar10_test_lmdb", 64, 100, t, t)
    else:
        b.add(input_layer([64, 3, 32, 32]))
    x = "data"
    for s, width in ((1, 50), (2, 100)):
        for i in (1, 2):
            x = b.conv("conv%d_%d" % (s, i), x, width, 3, pad=1)
            b.relu("relu%d_%d" % (s, i), x)
        x = b.pool("pool%d" % s, x, "MAX", 2, 2)
        b.dropout("drop%d" % s, x, 0.25)
    x = b.ip("fc1", x, 512)
    b.relu("relu3", x)
    b.dropout("drop3", x, 0.5)
    x = b.ip("fc2", x, 10)
    if train:
        b.accuracy(x)
        b.softmax_loss(x)
    else:
        b.softmax(x)
    return b.layers


GRU_T = 150        # review length (padded/truncated, words at the end)
GRU_VOCAB = 30000  # the most frequent words; id 0 is padding
GRU_EMBED = 125
GRU_HIDDEN = 100


def gru_imdb(train):
    b = Builder(train)
    T, N, N_TEST = GRU_T, 64, 100
    if train:
        # Each Datum holds one review: channels = T word ids in float_data (oldest first),
        # height = width = 1, label 0 (negative) or 1 (positive). The batch arrives as
        # [N, T, 1, 1]; the recurrent layer wants time first, [T, N]: slice the T steps
        # apart and stack them along axis 0 (a transpose made of Slice + Concat).
        b.layers += data_layers("imdb", "data/imdb/imdb_train_lmdb", "data/imdb/imdb_test_lmdb",
                                N, N_TEST, None, None)
        steps = ["step%d" % t for t in range(T)]
        b.add(layer("steps", "Slice", "data", steps, slice_param={"axis": 1}))
        b.add(layer("steps_tn", "Concat", steps, "steps_tn", concat_param={"axis": 0}))
        b.add(layer("words", "Reshape", "steps_tn", "words",
                    reshape_param={"shape": {"dim": [T, -1]}}))
        # Sequence continuation: 0 at the first step (every batch holds new reviews), then 1;
        # one layer per phase, as the batch sizes differ.
        for phase, batch in ((TRAIN, N), (TEST, N_TEST)):
            b.add(layer("cont_parts", "DummyData", None, ["cont_first", "cont_rest"],
                        include=phase, dummy_data_param={
                            "data_filler": [filler("constant", value=0.0),
                                            filler("constant", value=1.0)],
                            "shape": [{"dim": [1, batch]}, {"dim": [T - 1, batch]}]}))
        b.add(layer("cont", "Concat", ["cont_first", "cont_rest"], "cont",
                    concat_param={"axis": 0}))
        words = "words"
    else:
        b.add(input_layer([T, N], "data"))
        b.add(input_layer([T, N], "cont"))
        words = "data"
    fields = {}
    if train:
        fields["param"] = [{"lr_mult": 1, "decay_mult": 1}]
    fields["embed_param"] = {"num_output": GRU_EMBED, "input_dim": GRU_VOCAB, "bias_term": False,
                             "weight_filler": filler("uniform", min=-0.05, max=0.05)}
    b.add(layer("embed", "Embed", words, "embed", **fields))
    b.add(layer("gru", "GRU", ["embed", "cont"], "gru", recurrent_param={
        "num_output": GRU_HIDDEN,
        "weight_filler": filler("uniform", min=-0.1, max=0.1),
        "bias_filler": filler("constant", value=0.0)}))
    # The classifier reads the hidden state after the last step only.
    b.add(layer("gru_split", "Slice", "gru", ["gru_head", "gru_last"],
                slice_param={"axis": 0, "slice_point": [T - 1]}))
    b.add(layer("silence_head", "Silence", "gru_head"))
    b.add(layer("last_state", "Reshape", "gru_last", "last_state",
                reshape_param={"shape": {"dim": [-1, GRU_HIDDEN]}}))
    x = b.ip("fc", "last_state", 2)
    if train:
        b.accuracy(x)
        b.softmax_loss(x)
    else:
        b.softmax(x)
    return b.layers


# ---------------------------------------------------------------------------------------
# The zoo
# ---------------------------------------------------------------------------------------
def sgd(model, fields):
    out = {"net": "models/%s/train_val.prototxt" % model}
    out.update(fields)
    out.setdefault("snapshot_prefix", "models/%s/%s" % (model, model))
    out.setdefault("solver_mode", Enum("CPU"))
    return out


IMAGENET_SOLVER_NOTE = "ILSVRC-2012: 1,281,167 training images, 50,000 validation images."

MODELS = [
    {
        "dir": "cifar10_quick", "name": "CIFAR10_quick", "build": cifar10_quick,
        "about": """\
Caffe's CIFAR-10 "quick" network: three 5x5 convolutions (32, 32, 64) with max / average
pooling, two fully connected layers (64, 10).""",
        "data": """\
Training data: data/cifar10/cifar10_{train,test}_lmdb (Caffe Datums, 3x32x32 uint8, label
0..9), which the user prepares (see README.md).""",
        "solver_note": """\
Caffe's schedule for the quick model: 4,000 iterations of batch 100 (8 epochs) at a fixed
learning rate of 0.001; Caffe follows them with 1,000 at 0.0001.""",
        "solver": {"test_iter": 100, "test_interval": 500, "base_lr": 0.001, "momentum": 0.9,
                   "weight_decay": 0.004, "lr_policy": "fixed", "display": 100,
                   "max_iter": 4000, "snapshot": 4000, "random_seed": 1701},
    },
    {
        "dir": "cifar10_full", "name": "CIFAR10_full", "build": cifar10_full,
        "about": """\
Caffe's CIFAR-10 "full" network: the quick network's convolutions with local response
normalisation within channels (3x3 regions) after the first two stages and a single
fully connected classifier.""",
        "data": """\
Training data: data/cifar10/cifar10_{train,test}_lmdb (Caffe Datums, 3x32x32 uint8, label
0..9), which the user prepares (see README.md).""",
        "solver_note": """\
60,000 iterations of batch 100 at 0.001, then 5,000 at 0.0001 and 5,000 at 0.00001.""",
        "solver": {"test_iter": 100, "test_interval": 1000, "base_lr": 0.001, "momentum": 0.9,
                   "weight_decay": 0.004, "lr_policy": "multistep", "gamma": 0.1,
                   "stepvalue": [60000, 65000], "display": 200, "max_iter": 70000,
                   "snapshot": 10000, "random_seed": 1701},
    },
    {
        "dir": "alexnet", "name": "AlexNet", "build": lambda t: alexnet_like(t, False),
        "about": """\
AlexNet (Krizhevsky, Sutskever & Hinton 2012) as Caffe trains it: five convolutions
(conv2, conv4, conv5 split into two groups, as on the paper's two GPUs), local response
normalisation before pooling, three fully connected layers with dropout.""",
        "data": IMAGENET_DATA_NOTE,
        "solver_note": IMAGENET_SOLVER_NOTE + """
90 epochs of batch 256 (450,000 iterations), learning rate 0.01 divided by 10 every
100,000 iterations.""",
        "solver": {"test_iter": 1000, "test_interval": 1000, "base_lr": 0.01,
                   "lr_policy": "step", "gamma": 0.1, "stepsize": 100000, "display": 20,
                   "max_iter": 450000, "momentum": 0.9, "weight_decay": 0.0005,
                   "snapshot": 10000},
    },
    {
        "dir": "caffenet", "name": "CaffeNet", "build": lambda t: alexnet_like(t, True),
        "about": """\
CaffeNet, Caffe's reference variant of AlexNet: the same layers and parameters, with
pooling before local response normalisation.""",
        "data": IMAGENET_DATA_NOTE,
        "solver_note": IMAGENET_SOLVER_NOTE + """
Batch 256, learning rate 0.01 divided by 10 every 100,000 iterations, 450,000 iterations.""",
        "solver": {"test_iter": 1000, "test_interval": 1000, "base_lr": 0.01,
                   "lr_policy": "step", "gamma": 0.1, "stepsize": 100000, "display": 20,
                   "max_iter": 450000, "momentum": 0.9, "weight_decay": 0.0005,
                   "snapshot": 10000},
    },
    {
        "dir": "googlenet", "name": "GoogLeNet", "build": googlenet,
        "about": """\
GoogLeNet (Szegedy et al. 2014), Inception v1: nine Inception modules. train_val.prototxt
carries the two auxiliary classifiers (after inception_4a and inception_4d, loss weight
0.3 each); deploy.prototxt has the main classifier only.""",
        "data": IMAGENET_DATA_NOTE,
        "solver_note": IMAGENET_SOLVER_NOTE + """
Batch 32, polynomial decay (power 0.5) of the learning rate from 0.01 over 2,400,000
iterations (about 60 epochs).""",
        "solver": {"test_iter": 1000, "test_interval": 4000, "test_initialization": False,
                   "display": 40, "average_loss": 40, "base_lr": 0.01, "lr_policy": "poly",
                   "power": 0.5, "max_iter": 2400000, "momentum": 0.9,
                   "weight_decay": 0.0002, "snapshot": 40000},
    },
    {
        "dir": "vgg16", "name": "VGG_ILSVRC_16_layers", "build": vgg16,
        "about": """\
VGG-16 (Simonyan & Zisserman 2014, configuration D): thirteen 3x3 convolutions in five
stages, each stage closed by 2x2 max pooling, and three fully connected layers.""",
        "data": IMAGENET_DATA_NOTE,
        "solver_note": IMAGENET_SOLVER_NOTE + """
The paper's batch of 256 as 8 accumulated batches of 32 (iter_size), learning rate 0.01
divided by 10 three times, 74 epochs (370,000 iterations).""",
        "solver": {"test_iter": 2000, "test_interval": 5000, "base_lr": 0.01,
                   "lr_policy": "multistep", "gamma": 0.1,
                   "stepvalue": [150000, 250000, 320000], "iter_size": 8, "display": 20,
                   "max_iter": 370000, "momentum": 0.9, "weight_decay": 0.0005,
                   "snapshot": 10000},
    },
    {
        "dir": "resnet50", "name": "ResNet-50", "build": resnet50,
        "about": """\
ResNet-50 (He, Zhang, Ren & Sun 2015), the layout of the authors' Caffe release: every
convolution (no bias) is followed by BatchNorm (statistics) and Scale (learned gamma and
beta); bottleneck blocks of 1x1 / 3x3 / 1x1 convolutions, the stride on the first 1x1 of
the first block of a stage, which also has a projection shortcut (branch1).
train_val.prototxt leaves use_global_stats unset (batch statistics in TRAIN, the running
averages in TEST); deploy.prototxt sets it.""",
        "data": IMAGENET_DATA_NOTE,
        "solver_note": IMAGENET_SOLVER_NOTE + """
The paper's batch of 256 as 8 accumulated batches of 32 (iter_size), learning rate 0.1
divided by 10 at epochs 30 and 60, 90 epochs (450,000 iterations), weight decay 0.0001.""",
        "solver": {"test_iter": 2000, "test_interval": 5000, "base_lr": 0.1,
                   "lr_policy": "multistep", "gamma": 0.1, "stepvalue": [150000, 300000],
                   "iter_size": 8, "display": 20, "max_iter": 450000, "momentum": 0.9,
                   "weight_decay": 0.0001, "snapshot": 10000},
    },
    {
        "dir": "resnet50_features", "name": "ResNet-50-features", "build": resnet50_features,
        "deploy_only": True,
        "about": """\
ResNet-50 as a feature extractor (the classic framework comparison's second task): the
resnet50 deploy net cut after global average pooling, 2048 features per image, batch 32.
Its layer names equal resnet50's, so resnet50 weights load as they are.""",
    },
    {
        "dir": "squeezenet1.1", "name": "SqueezeNet1.1", "build": squeezenet11,
        "about": """\
SqueezeNet 1.1 (Iandola et al. 2016, the authors' v1.1 revision): a 3x3 stem, eight Fire
modules (1x1 squeeze, then parallel 1x1 and 3x3 expands, concatenated) and a 1x1
convolutional classifier followed by global average pooling. No fully connected layer.""",
        "data": IMAGENET_DATA_NOTE,
        "solver_note": IMAGENET_SOLVER_NOTE + """
Batch 32 with 16 accumulated (iter_size, 512 images per step, as the authors), learning rate
0.04 decayed linearly (poly, power 1) over 170,000 iterations.""",
        "solver": {"test_iter": 2000, "test_interval": 1000, "base_lr": 0.04,
                   "lr_policy": "poly", "power": 1.0, "iter_size": 16, "display": 40,
                   "average_loss": 40, "max_iter": 170000, "momentum": 0.9,
                   "weight_decay": 0.0002, "snapshot": 1000, "test_initialization": False},
    },
    {
        "dir": "mobilenet_v1", "name": "MobileNet-v1", "build": mobilenet_v1,
        "about": """\
MobileNet v1 1.0-224 (Howard et al. 2017): a strided 3x3 stem, thirteen depthwise-separable
blocks (3x3 depthwise convolution = Convolution with group equal to its channels, then a
1x1 pointwise convolution), each convolution followed by BatchNorm + Scale + ReLU, global
average pooling and a 1000-way fully connected classifier.""",
        "data": IMAGENET_DATA_NOTE,
        "solver_note": IMAGENET_SOLVER_NOTE + """
Batch 64 with 4 accumulated (iter_size), learning rate 0.1 decayed by 0.98 every 5,000
iterations (exp-like step schedule), weight decay 0.00004 as in the paper.""",
        "solver": {"test_iter": 2000, "test_interval": 5000, "base_lr": 0.1,
                   "lr_policy": "step", "gamma": 0.98, "stepsize": 5000, "iter_size": 4,
                   "display": 40, "average_loss": 40, "max_iter": 500000, "momentum": 0.9,
                   "weight_decay": 4e-05, "snapshot": 10000},
    },
    {
        "dir": "vgg_cifar", "name": "VGG-CIFAR", "build": vgg_cifar,
        "about": """\
The VGG-style CIFAR-10 CNN of the classic deep-learning framework comparison (the same
architecture as bench/vgg_cifar.prototxt): conv3x3 50, conv3x3 50, max pool, dropout 0.25,
conv3x3 100, conv3x3 100, max pool, dropout 0.25, fully connected 512, dropout 0.5,
fully connected 10; ReLU after every convolution and the first fully connected layer.""",
        "data": """\
Training data: data/cifar10/cifar10_{train,test}_lmdb (Caffe Datums, 3x32x32 uint8, label
0..9), which the user prepares (see README.md); inputs are scaled to [0, 1].""",
        "solver_note": """\
The comparison's recipe: SGD with momentum 0.9 at a learning rate of 0.01, batch 64, 10
epochs (7,813 iterations).""",
        "solver": {"test_iter": 100, "test_interval": 782, "base_lr": 0.01, "momentum": 0.9,
                   "lr_policy": "fixed", "display": 100, "max_iter": 7813, "snapshot": 7813,
                   "random_seed": 1701},
    },
    {
        "dir": "gru_imdb", "name": "GRU-IMDB", "build": gru_imdb,
        "about": """\
The GRU sentiment classifier of the classic framework comparison (IMDB reviews): word ids
(30,000 most frequent words, 150 per review) -> Embed 125 -> GRU 100 -> the hidden state
after the last step -> fully connected 2 -> softmax. Time runs along axis 0: the GRU reads
[150, N] word ids and the [150, N] continuation flags (0 at step 0, 1 after).""",
        "data": """\
Training data: data/imdb/imdb_{train,test}_lmdb: one Datum per review, channels = 150 word
ids stored as float_data (padded with 0 at the front), height = width = 1, label 0 or 1:
`bash data/imdb.sh /path/to/aclImdb` converts the IMDB archive the user downloaded
(`--synthetic`: a synthetic set of the same layout); see README.md.""",
        "solver_note": """\
25,000 training reviews: batch 64, 3 epochs (1,172 iterations) of Adam at 0.001 (beta1 0.9,
beta2 0.999), as the comparison trains it; gradients clipped to an L2 norm of 5.""",
        "solver": {"type": "Adam", "test_iter": 250, "test_interval": 391, "base_lr": 0.001,
                   "momentum": 0.9, "momentum2": 0.999, "delta": 1e-08, "lr_policy": "fixed",
                   "clip_gradients": 5.0, "display": 50,
                   "max_iter": 1172, "snapshot": 1172, "random_seed": 1701},
    },
]


def outputs(model):
    files = {}
    about = model["about"]
    deploy_comment = about + "\n\nDeploy net: Input layers, fillers for random weights.\n" \
        "Generated by models/generate_zoo.py; edit that script, not this file."
    files["deploy.prototxt"] = net_text(model["name"], deploy_comment, model["build"](False))
    if not model.get("deploy_only"):
        tv_comment = about + "\n\n" + model["data"] + \
            "\nGenerated by models/generate_zoo.py; edit that script, not this file."
        files["train_val.prototxt"] = net_text(model["name"], tv_comment, model["build"](True))
        solver_comment = model["name"] + " solver.\n" + model["solver_note"] + \
            "\nGenerated by models/generate_zoo.py; edit that script, not this file."
        files["solver.prototxt"] = solver_text(solver_comment, sgd(model["dir"], model["solver"]))
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing them")
    args = parser.parse_args()
    stale = []
    for model in MODELS:
        folder = os.path.join(HERE, model["dir"])
        for name, text in outputs(model).items():
            path = os.path.join(folder, name)
            if args.check:
                try:
                    with open(path) as f:
                        if f.read() == text:
                            continue
                except FileNotFoundError:
                    pass
                stale.append(os.path.relpath(path, os.path.dirname(HERE)))
            else:
                os.makedirs(folder, exist_ok=True)
                with open(path, "w") as f:
                    f.write(text)
    if args.check:
        for path in stale:
            print("out of date: " + path)
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
