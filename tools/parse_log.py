#!/usr/bin/python3
"""Turn a crema (or Caffe) training log into two CSV tables.

    parse_log.py LOGFILE [OUTPUT_DIR] [--delimiter ,] [--verbose]

writes OUTPUT_DIR/<log name>.train.csv and OUTPUT_DIR/<log name>.test.csv (OUTPUT_DIR
defaults to the log's directory). Columns, as in Caffe's tools/extra/parse_log.py:

    NumIters, Seconds, LearningRate, <one column per net output name>

Train rows come from "Train net output #k: NAME = VALUE" lines, one row per displayed
iteration; test rows from the "Test net output #k: NAME = VALUE" lines that follow
"Iteration N, Testing net (#j)" (outputs of test net j > 0 get the column NAME@j).
Seconds are measured from the glog timestamp of the first log line. LearningRate is the
"Iteration N, lr = X" value logged for the row's iteration (or the latest one before it),
so it is exact rather than one display late. A value that is missing in a row is left
empty. Status-line control sequences (from a terminal capture) are ignored.

Standard library only.
"""

import argparse
import csv
import datetime
import math
import os
import re
import sys

# glog prefix: severity, [year]month day, time with microseconds.
_TIMESTAMP = re.compile(
    r'^[IWEF](\d{4})?(\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6})')
_NUMBER = r'([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)'
_ITERATION = re.compile(r'Iteration (\d+)')
_LEARNING_RATE = re.compile(r'Iteration (\d+), lr = ' + _NUMBER)
_TESTING = re.compile(r'Iteration (\d+), Testing net \(#(\d+)\)')
_TRAIN_OUTPUT = re.compile(r'Train net output #(\d+): (\S+) = ' + _NUMBER)
_TEST_OUTPUT = re.compile(r'Test net output #(\d+): (\S+) = ' + _NUMBER)
_ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')

FIXED_COLUMNS = ['NumIters', 'Seconds', 'LearningRate']


def _clean(line):
    """The text a terminal would show last on this line (drops status-line redraws)."""
    parts = [_ANSI.sub('', part) for part in line.rstrip('\n').split('\r')]
    parts = [part for part in parts if part.strip()]
    return parts[-1] if parts else ''


class _Clock:
    """Seconds since the first timestamp; years are guessed for year-less prefixes."""

    def __init__(self, path):
        try:
            self.year = datetime.datetime.fromtimestamp(os.path.getmtime(path)).year
        except OSError:
            self.year = datetime.datetime.now().year
        self.start = None
        self.last = None

    def seconds(self, line):
        match = _TIMESTAMP.match(line)
        if not match:
            return None
        year, month, day, hour, minute, second, micro = match.groups()
        month, day = int(month), int(day)
        if year is None:
            if self.last is not None and month < self.last.month:
                self.year += 1  # the log crossed New Year
            year = self.year
        try:
            when = datetime.datetime(int(year), month, day, int(hour), int(minute),
                                     int(second), int(micro))
        except ValueError:
            return None
        if self.start is None:
            self.start = when
        self.last = when
        return (when - self.start).total_seconds()


def _float(text):
    try:
        return float(text)
    except ValueError:
        return float('nan')


def parse_log(path):
    """Returns (train_rows, test_rows, train_names, test_names); rows are dicts."""
    clock = _Clock(path)
    iteration = None
    seconds = 0.0
    last_lr = float('nan')
    lr_at = {}
    train, test = {}, {}
    train_names, test_names = [], []
    test_net = 0
    with open(path, errors='replace') as log:
        for raw in log:
            line = _clean(raw)
            stamp = clock.seconds(line)
            if stamp is not None:
                seconds = stamp
            match = _ITERATION.search(line)
            if match:
                iteration = int(match.group(1))
            match = _LEARNING_RATE.search(line)
            if match:
                lr = _float(match.group(2))
                lr_at[int(match.group(1))] = lr
                last_lr = lr
                if iteration in train:
                    train[iteration]['LearningRate'] = lr
                continue
            match = _TESTING.search(line)
            if match:
                test_net = int(match.group(2))
                if iteration not in test:
                    test[iteration] = {'NumIters': iteration, 'Seconds': seconds,
                                       'LearningRate': last_lr}
                continue
            if iteration is None:
                continue
            match = _TRAIN_OUTPUT.search(line)
            if match:
                name, value = match.group(2), _float(match.group(3))
                row = train.setdefault(iteration, {'NumIters': iteration, 'Seconds': seconds,
                                                   'LearningRate': lr_at.get(iteration, last_lr)})
                row[name] = value
                if name not in train_names:
                    train_names.append(name)
                continue
            match = _TEST_OUTPUT.search(line)
            if match:
                name = match.group(2) if test_net == 0 else '%s@%d' % (match.group(2), test_net)
                value = _float(match.group(3))
                row = test.setdefault(iteration, {'NumIters': iteration, 'Seconds': seconds,
                                                  'LearningRate': last_lr})
                row[name] = value
                if name not in test_names:
                    test_names.append(name)
    # The rate of iteration N is logged after its test: use it when it came later.
    for it, row in test.items():
        if it in lr_at:
            row['LearningRate'] = lr_at[it]
    train_rows = [train[k] for k in sorted(train)]
    test_rows = [test[k] for k in sorted(test) if len(test[k]) > len(FIXED_COLUMNS)]
    # Like Caffe: a leading row without a known rate takes the next row's.
    for rows in (train_rows, test_rows):
        if len(rows) > 1 and math.isnan(rows[0]['LearningRate']):
            rows[0]['LearningRate'] = rows[1]['LearningRate']
    return train_rows, test_rows, train_names, test_names


def _format(value):
    if value is None:
        return ''
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(path, rows, names, delimiter=','):
    columns = FIXED_COLUMNS + names
    with open(path, 'w', newline='') as out:
        writer = csv.writer(out, delimiter=delimiter, lineterminator='\n')
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_format(row.get(column)) for column in columns])


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Parse a crema/Caffe training log into LOG.train.csv and LOG.test.csv')
    parser.add_argument('logfile_path', help='the training log (glog format)')
    parser.add_argument('output_dir', nargs='?', default=None,
                        help="where to write the CSV files (default: the log's directory)")
    parser.add_argument('--delimiter', default=',', help="column delimiter (default ',')")
    parser.add_argument('--verbose', action='store_true', help='print the files written')
    args = parser.parse_args(argv)
    if not os.path.isfile(args.logfile_path):
        sys.stderr.write('parse_log.py: no such log file: %s\n' % args.logfile_path)
        return 1
    output_dir = args.output_dir
    if output_dir is None:
        output_dir = os.path.dirname(os.path.abspath(args.logfile_path))
    if not os.path.isdir(output_dir):
        sys.stderr.write('parse_log.py: output directory does not exist: %s\n' % output_dir)
        return 1
    train_rows, test_rows, train_names, test_names = parse_log(args.logfile_path)
    base = os.path.join(output_dir, os.path.basename(args.logfile_path))
    for suffix, rows, names in (('.train.csv', train_rows, train_names),
                                ('.test.csv', test_rows, test_names)):
        write_csv(base + suffix, rows, names, args.delimiter)
        if args.verbose:
            print('Wrote %s (%d rows)' % (base + suffix, len(rows)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
