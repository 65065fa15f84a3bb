#!/usr/bin/env python3
"""Layer-by-layer comparison of crema with a BVLC Caffe build, side by side.

    python3 tools/caffe_parity/parity.py --caffe /path/to/caffe [--crema build/crema]
                                         [--gpu] [--work DIR] [PATTERN ...]

Caffe is not part of crema: build it yourself and give its `caffe` binary. Each case
(cases.py; PATTERNs select cases by regular expression) is a small net:
  - Parameter layers hold the inputs (learnable unless they are labels or fixed), then the
    layer(s) under test, then a EuclideanLoss of each output against a fixed random target
    (or a Reduction SUMSQ loss, or the layer's own loss);
  - both programs start from the same weights (init.caffemodel: the parameters Caffe's
    fillers gave, the inputs and targets drawn here) and
      `test` the net: the forward outputs, every value as printed;
      `train` one SGD step at learning rate 1, no momentum or decay: the saved weights minus
      the initial ones are minus the gradients for the inputs and the parameters.
  - a case with `net` only runs `test` on that net (data layers); one with `solver` compares
    the losses and test outputs that `train` prints.
The report gives, per case, the relative L2 difference (crema against Caffe) of each
output and gradient and a verdict: same (bit for bit), close (within --tolerance), known
(crema differs on purpose, cases.py says why), differ. Exit status 1 if any case differs
or fails. --gpu runs crema on GPU 0 (Caffe stays on the CPU). Needs protoc.
"""
import argparse
import math
import os
import random
import re
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import textproto as tp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(ROOT, 'proto')


def run(cmd, cwd, log):
    """Runs `cmd` in `cwd` on one thread, output to `log`; returns (exit code, output)."""
    env = dict(os.environ, GLOG_logtostderr='1', OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1')
    path = os.path.join(cwd, log)
    with open(path, 'w') as f:
        code = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, shell=True,
                              env=env).returncode
    with open(path) as f:
        return code, f.read()


def protoc(mode, path, text=None):
    """Decodes a binary NetParameter file to a field list, or encodes one into it."""
    cmd = 'protoc --%s=crema.pb.NetParameter -I%s crema.proto' % (mode, PROTO_DIR)
    if mode == 'decode':
        with open(path, 'rb') as f:
            r = subprocess.run(cmd, shell=True, stdin=f, capture_output=True)
        if r.returncode:
            raise RuntimeError(r.stderr.decode())
        return tp.parse(r.stdout.decode())
    with open(path, 'wb') as f:
        r = subprocess.run(cmd, shell=True, input=tp.write(text).encode(), stdout=f,
                           stderr=subprocess.PIPE)
    if r.returncode:
        raise RuntimeError(r.stderr.decode())


def blob(shape, values):
    return [('shape', [('dim', str(d)) for d in shape])] + [('data', repr(v)) for v in values]


def blobs_by_layer(net):
    out = {}
    for layer in tp.get(net, 'layer'):
        values = [[float(x) for x in tp.get(b, 'data')] for b in tp.get(layer, 'blobs')]
        if values:
            out[tp.get(layer, 'name')[0].strip('"')] = values
    return out


def parameter_layer(name, shape, learnable):
    return ('layer { name: "%s" type: "Parameter" top: "%s" parameter_param { shape { %s } } '
            'param { lr_mult: %d decay_mult: 0 } }\n' %
            (name, name, ' '.join('dim: %d' % d for d in shape), 1 if learnable else 0))


def input_values(inp, rng):
    n = math.prod(inp.shape)
    if inp.values is not None:
        assert len(inp.values) == n, inp.name
        return list(inp.values)
    if inp.kind == 'label':
        return [float(rng.randint(int(inp.lo), int(inp.hi))) for _ in range(n)]
    return [rng.uniform(inp.lo, inp.hi) for _ in range(n)]


def top_shapes(log, layer):
    """The top shapes Caffe logs when it sets up `layer`."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.endswith('Setting up ' + layer):
            shapes = []
            for following in lines[i + 1:]:
                m = re.search(r'Top shape: ([\d ]*)\(', following)
                if not m:
                    return shapes
                shapes.append([int(d) for d in m.group(1).split()])
    return []


def test_outputs(log):
    values = {}
    for m in re.finditer(r'Batch \d+, (\S+) = (\S+)', log):
        values.setdefault(m.group(1), []).append(float(m.group(2)))
    return values


def relative(a, b):
    if len(a) != len(b):
        return float('inf')
    if any(math.isnan(x) for x in a + b):
        return 0.0 if all(math.isnan(x) == math.isnan(y) for x, y in zip(a, b)) else float('inf')
    diff = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    norm = math.sqrt(sum(x * x for x in a))
    return diff / norm if norm > 0 else diff


class Runner:
    def __init__(self, args):
        # Absolute paths: the programs run inside each case's directory.
        self.caffe, self.crema = os.path.abspath(args.caffe), os.path.abspath(args.crema)
        self.gpu, self.work = args.gpu, os.path.abspath(args.work)
        self.empty = os.path.join(self.work, 'empty.caffemodel')
        os.makedirs(self.work, exist_ok=True)
        open(self.empty, 'wb').close()

    def programs(self):
        return (('caffe', self.caffe, ''), ('crema', self.crema, ' --gpu=0' if self.gpu else ''))

    def test(self, d, model, weights, iterations=1):
        out = {}
        for who, exe, gpu in self.programs():
            code, log = run('%s test --model=%s --weights=%s --iterations=%d%s' %
                            (exe, model, weights, iterations, gpu), d, who + '_test.log')
            if code:
                raise RuntimeError('%s test failed:\n%s' % (who, log[-1500:]))
            out[who] = test_outputs(log)
        rows = [('out ' + k, relative(v, out['crema'].get(k, [])), True)
                for k, v in out['caffe'].items()]
        return rows + [('out %s (crema only)' % k, float('inf'), True) for k in out['crema']
                       if k not in out['caffe']]

    def train(self, d, net, weights, solver_extra):
        saved = {}
        for who, exe, gpu in self.programs():
            with open(os.path.join(d, 'solver_%s.prototxt' % who), 'w') as f:
                f.write('net: "%s"\nsnapshot_prefix: "%s"\nsolver_mode: %s\nrandom_seed: 7\n%s' %
                        (net, who, 'GPU' if gpu else 'CPU', solver_extra))
            flags = ' --weights=' + weights if weights else ''
            code, log = run('%s train --solver=solver_%s.prototxt%s' % (exe, who, flags), d,
                            who + '_train.log')
            if code:
                raise RuntimeError('%s train failed:\n%s' % (who, log[-1500:]))
            saved[who] = log
        return saved

    def layer_case(self, c, d):
        rng = random.Random(zlib.crc32(c.name.encode()))
        body = ''.join(parameter_layer(i.name, i.shape, i.kind == 'float') for i in c.inputs)
        body += c.layers + '\n'
        with open(os.path.join(d, 'net.prototxt'), 'w') as f:
            f.write(body)
        # Caffe's fillers set the parameters (and log the top shapes): a 0-iteration run.
        self.write(d, 'solver0.prototxt', 'net: "net.prototxt"\nbase_lr: 1\nlr_policy: "fixed"\n'
                   'max_iter: 0\nsnapshot_prefix: "init0"\nsolver_mode: CPU\nrandom_seed: 7\n')
        code, log = run('%s train --solver=solver0.prototxt' % self.caffe, d, 'caffe_setup.log')
        if code:
            raise RuntimeError('caffe setup failed:\n' + log[-1500:])
        layers = []
        for layer in tp.get(protoc('decode', os.path.join(d, 'init0_iter_0.caffemodel')), 'layer'):
            name = tp.get(layer, 'name')[0].strip('"')
            blobs = tp.get(layer, 'blobs')
            given = [i for i in c.inputs if i.name == name]
            if given:
                blobs = [blob(given[0].shape, input_values(given[0], rng))]
            elif c.param_range:
                lo, hi = c.param_range
                blobs = [[kv for kv in b if kv[0] != 'data'] +
                         [('data', repr(rng.uniform(lo, hi))) for _ in tp.get(b, 'data')]
                         for b in blobs]
            if blobs:
                layers.append([('name', '"%s"' % name)] + [('blobs', b) for b in blobs])
        train = body + self.objectives(c, log, layers, rng)
        self.write(d, 'train.prototxt', train)
        protoc('encode', os.path.join(d, 'init.caffemodel'), [('layer', l) for l in layers])
        rows = self.test(d, 'net.prototxt', 'init.caffemodel') if c.test else []
        if not c.train:
            return rows
        self.train(d, 'train.prototxt', 'init.caffemodel',
                   'base_lr: 1\nlr_policy: "fixed"\nmax_iter: 1\n')
        start = blobs_by_layer([('layer', l) for l in layers])
        after = {w: blobs_by_layer(protoc('decode', os.path.join(d, '%s_iter_1.caffemodel' % w)))
                 for w in ('caffe', 'crema')}
        fixed = {i.name for i in c.inputs if i.kind != 'float'}
        grads = []
        for name, values in start.items():
            if name.startswith('t_') or name in fixed:
                continue
            for k, v0 in enumerate(values):
                g = {w: [a - b for a, b in zip(after[w][name][k], v0)] for w in after}
                grads.append(('grad %s[%d]' % (name, k), g['caffe'], g['crema']))
        # A gradient's relative difference counts for the verdict unless the difference is
        # negligible against the case's largest gradient (a gradient that is zero in exact
        # arithmetic is rounding noise in both programs).
        scale = max((math.sqrt(sum(x * x for x in a)) for _, a, _ in grads), default=0)
        for label, a, b in grads:
            diff = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
            rows.append((label, relative(a, b), diff > 1e-6 * scale))
        return rows

    def objectives(self, c, setup_log, layers, rng):
        """The losses appended for training: per output top, against a fixed target."""
        text = ''
        first = re.search(r'name: "([^"]+)"', c.layers).group(1)
        tops = c.outputs or re.findall(r'top: "([^"]+)"', c.layers)
        shapes = top_shapes(setup_log, first)
        for k, top in enumerate(tops):
            if top in c.loss_tops or top in c.skip_tops:
                continue
            if c.reduce_loss or k >= len(shapes):
                text += ('layer { name: "l_%s" type: "Reduction" bottom: "%s" top: "l_%s" '
                         'loss_weight: 1 reduction_param { operation: SUMSQ coeff: 0.5 } }\n' %
                         (top, top, top))
                continue
            shape, source = shapes[k], top
            if len(shape) > 4:  # Caffe's EuclideanLoss takes at most four axes
                text += ('layer { name: "f_%s" type: "Reshape" bottom: "%s" top: "%s_f" '
                         'reshape_param { shape { dim: 0 dim: -1 } } }\n' % (top, top, top))
                shape, source = [shape[0], math.prod(shape[1:])], top + '_f'
            target = 't_' + top
            text += parameter_layer(target, shape, False)
            text += ('layer { name: "l_%s" type: "EuclideanLoss" bottom: "%s" bottom: "%s" '
                     'top: "l_%s" }\n' % (top, source, target, top))
            layers.append([('name', '"%s"' % target),
                           ('blobs', blob(shape, [rng.uniform(-1, 1) for _ in
                                                  range(math.prod(shape))]))])
        return text

    def net_case(self, c, d):
        self.write(d, 'net.prototxt', c.net.replace('$ROOT', ROOT))
        return self.test(d, 'net.prototxt', self.empty, c.iterations)

    def solver_case(self, c, d):
        self.write(d, 'net.prototxt', c.net.replace('$ROOT', ROOT))
        logs = self.train(d, 'net.prototxt', None, c.solver)
        pattern = r'(Iteration \d+.*loss = \S+|Test net output #\d+: .*)'
        printed = {w: [re.sub(r'Iteration (\d+) \(.*\)', r'Iteration \1', m)
                       for m in re.findall(pattern, log)] for w, log in logs.items()}
        values = {w: [float(re.findall(r'= (\S+)', p)[0]) for p in v] for w, v in printed.items()}
        return [('printed losses and test outputs (%d)' % len(values['caffe']),
                 relative(values['caffe'], values['crema']), True)]

    @staticmethod
    def write(d, name, text):
        with open(os.path.join(d, name), 'w') as f:
            f.write(text)

    def case(self, c):
        d = os.path.join(self.work, c.name)
        os.makedirs(d, exist_ok=True)
        if c.solver:
            return self.solver_case(c, d)
        return self.net_case(c, d) if c.net else self.layer_case(c, d)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--caffe', required=True, help="BVLC Caffe's `caffe` binary")
    parser.add_argument('--crema', default=os.path.join(ROOT, 'build', 'crema'))
    parser.add_argument('--gpu', action='store_true', help='run crema on GPU 0')
    parser.add_argument('--work', default='/tmp/crema_parity', help='scratch directory')
    parser.add_argument('--tolerance', type=float, default=1e-5,
                        help='largest relative difference reported as agreeing')
    parser.add_argument('patterns', nargs='*', help='run the cases whose name matches')
    args = parser.parse_args()
    runner = Runner(args)
    counts = {'same': 0, 'close': 0, 'known': 0, 'differ': 0, 'failed': 0}
    for c in cases.CASES:
        if args.patterns and not any(re.search(p, c.name) for p in args.patterns):
            continue
        try:
            rows = runner.case(c)
        except RuntimeError as e:
            counts['failed'] += 1
            print('FAILED %-30s %s' % (c.name, str(e).splitlines()[0]))
            continue
        worst = max((r for _, r, counted in rows if counted), default=0.0)
        if all(r == 0 for _, r, _ in rows):
            verdict = 'same'
        elif worst <= args.tolerance:
            verdict = 'close'
        else:
            verdict = 'known' if c.known_difference else 'differ'
        counts[verdict] += 1
        print('%-6s %-30s %.1e  %s' % (verdict, c.name, worst,
                                        '; '.join('%s %.1e' % r[:2] for r in rows)))
        sys.stdout.flush()
    print('bit-identical %(same)d, within tolerance %(close)d, different on purpose %(known)d, '
          'different %(differ)d, failed %(failed)d' % counts)
    return 1 if counts['differ'] or counts['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
