#!/usr/bin/python3
"""Plot the learning curves of a crema (or Caffe) training log into a PNG.

    plot_training_log.py LOG OUT.png [--x iters|seconds] [--fields loss,accuracy]
                         [--title TEXT] [--logy]

Left axis: losses (train outputs and test outputs whose name contains "loss"); right axis
(twin): the other test outputs, e.g. accuracy. --fields keeps only the outputs whose name
is in the comma-separated list (default: all). The log is read with parse_log.py (same
directory). Uses matplotlib's Agg backend: no display needed.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parse_log  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def _series(rows, name, x_key):
    xs, ys = [], []
    for row in rows:
        if name in row:
            xs.append(row[x_key])
            ys.append(row[name])
    return xs, ys


def _is_loss(name):
    return 'loss' in name.lower()


def main(argv=None):
    parser = argparse.ArgumentParser(description='Plot train/test curves of a training log.')
    parser.add_argument('log', help='the training log (glog format)')
    parser.add_argument('output', help='the PNG to write')
    parser.add_argument('--x', choices=['iters', 'seconds'], default='iters',
                        help='x axis: iterations (default) or seconds since the start')
    parser.add_argument('--fields', default='',
                        help='comma-separated output names to plot (default: all)')
    parser.add_argument('--title', default=None, help='plot title (default: the log name)')
    parser.add_argument('--logy', action='store_true', help='logarithmic loss axis')
    args = parser.parse_args(argv)
    if not os.path.isfile(args.log):
        sys.stderr.write('plot_training_log.py: no such log file: %s\n' % args.log)
        return 1

    train_rows, test_rows, train_names, test_names = parse_log.parse_log(args.log)
    wanted = [f.strip() for f in args.fields.split(',') if f.strip()]

    def keep(name):
        return not wanted or name in wanted or name.split('@')[0] in wanted

    train_names = [n for n in train_names if keep(n)]
    test_names = [n for n in test_names if keep(n)]
    if not train_names and not test_names:
        sys.stderr.write('plot_training_log.py: nothing to plot in %s%s\n' %
                         (args.log, ' for --fields=' + args.fields if wanted else ''))
        return 1
    x_key = 'NumIters' if args.x == 'iters' else 'Seconds'

    fig, left = plt.subplots(figsize=(10, 6), dpi=100)
    right = None
    has_loss = any(_is_loss(n) for n in train_names + test_names)
    if not has_loss:
        right = left  # only accuracy-like outputs: one axis is enough
    lines = []
    colors = iter(plt.rcParams['axes.prop_cycle'].by_key()['color'] * 4)
    for name in train_names:
        xs, ys = _series(train_rows, name, x_key)
        target = left if _is_loss(name) else (right or left.twinx())
        if target is not left:
            right = target
        lines += target.plot(xs, ys, '-', color=next(colors), linewidth=1.2, alpha=0.85,
                             label='train ' + name)
    for name in test_names:
        xs, ys = _series(test_rows, name, x_key)
        if _is_loss(name):
            target = left
        else:
            right = right or left.twinx()
            target = right
        lines += target.plot(xs, ys, 'o-', color=next(colors), linewidth=2, markersize=4,
                             label='test ' + name)

    left.set_xlabel('iterations' if args.x == 'iters' else 'seconds')
    if has_loss:
        left.set_ylabel('loss')
        if args.logy:
            left.set_yscale('log')
    left.grid(True, alpha=0.3)
    if right is not None:
        right.set_ylabel(', '.join(n for n in test_names + train_names if not _is_loss(n)))
    left.legend(lines, [line.get_label() for line in lines], loc='center right')
    left.set_title(args.title if args.title is not None else os.path.basename(args.log))
    fig.tight_layout()
    fig.savefig(args.output)
    plt.close(fig)
    return 0


if __name__ == '__main__':
    sys.exit(main())
