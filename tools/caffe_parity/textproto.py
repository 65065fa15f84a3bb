"""A small reader and writer of protobuf text format (what `protoc --decode` prints).

A message is a list of (field name, value) pairs in file order; a value is the scalar's
text (numbers and enum names as written, strings with their quotes) or, for a nested
message, another such list. Enough for NetParameter files; not a general parser.
"""
import re

_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([{}:])|([^\s{}:"]+))')


def _tokens(text):
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        if not m.group(1):  # skip comments
            out.append(m.group(2) or m.group(3) or m.group(4))
    return out


def parse(text):
    toks, i = _tokens(text), 0

    def message(end):
        nonlocal i
        fields = []
        while i < len(toks) and toks[i] != end:
            name = toks[i]
            i += 1
            if toks[i] == ':':
                i += 1
            if toks[i] == '{':
                i += 1
                fields.append((name, message('}')))
                i += 1
            else:
                fields.append((name, toks[i]))
                i += 1
        return fields

    return message(None)


def get(fields, name):
    """Every value of field `name`, in order."""
    return [v for k, v in fields if k == name]


def write(fields, indent=0):
    lines = []
    for k, v in fields:
        pad = ' ' * indent
        if isinstance(v, list):
            lines += [pad + k + ' {', write(v, indent + 2), pad + '}']
        else:
            lines.append('%s%s: %s' % (pad, k, v))
    return '\n'.join(line for line in lines if line)
