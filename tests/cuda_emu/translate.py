#!/usr/bin/env python3
"""Rewrites a .cu/.cuh file for crema's CUDA emulator (tests/cuda_emu/emu_device.hpp).

Two things change. The launch syntax:
    kernel<<<grid, block[, shared[, stream]]>>>(args)
becomes
    ::crema_emu::Launch("kernel", ::crema_emu::LaunchConfig(grid, block...),
                        [](auto... a) { kernel(a...); })(args)
Inside a macro definition the kernel's name is a macro parameter, so its string is #kernel.
And dynamic shared memory:
    extern __shared__ T name[];   becomes   T* name = ::crema_emu::DynamicShared<T>();
Line breaks are kept, so compiler messages point at the original lines.

usage: translate.py INPUT OUTPUT
"""
import re
import sys

# `extern __shared__ T name[];` (T may be qualified).
DYNAMIC_SHARED = re.compile(r"extern\s+__shared__\s+([A-Za-z_][\w:]*)\s+(\w+)\s*\[\s*\]\s*;")

# A kernel name: a qualified identifier with optional (non-nested) template arguments.
LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:\s*<[^<>;(){}]*>)?)\s*<<<(.*?)>>>", re.S)


def in_macro(text, pos):
    """True when pos lies inside a #define continued with backslashes."""
    line_start = text.rfind("\n", 0, pos) + 1
    while True:
        if text[line_start:].lstrip().startswith("#define"):
            return True
        if line_start == 0:
            return False
        prev_end = line_start - 1
        prev_start = text.rfind("\n", 0, prev_end) + 1
        if not text[prev_start:prev_end].rstrip().endswith("\\"):
            return False
        line_start = prev_start


def rewrite(text):
    def launch(match):
        name, config = match.group(1), match.group(2)
        label = "#" + name if in_macro(text, match.start()) else '"%s"' % name.replace(" ", "")
        return ("::crema_emu::Launch(%s, ::crema_emu::LaunchConfig(%s), "
                "[](auto... a) { %s(a...); })" % (label, config, name))

    text = DYNAMIC_SHARED.sub(r"\1* \2 = ::crema_emu::DynamicShared<\1>();", text)
    return LAUNCH.sub(launch, text)


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as f:
        text = f.read()
    out = '#line 1 "%s"\n%s' % (source, rewrite(text))
    with open(target, "w") as f:
        f.write(out)


if __name__ == "__main__":
    main()
