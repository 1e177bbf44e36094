#!/usr/bin/python3
"""Layering check: no source file includes a header from a folder above its own.

The folder order (bottom to top) is stated once, in README.md's "## Layout" section, as an indented block after
the paragraph that starts with "**Layering.**", entries separated by "<" (several entries of one layer by ","):

    mtl/core < mtl/config < ... < mtl/mtl.h, mtl/pch.h < tools

An entry is a folder (its subfolders count as it: mtl/data/text is mtl/data) or a single file. Every
`#include "..."` in the scanned folders (mtl/, heads/, backbones/, tools/; tests/ may include anything) is mapped
to its layer; a file that includes a later layer, or a file or header in no layer, is reported as
`file:line: ...`, one line each, and the exit status is 1.

Usage: check_layering.py [--root DIR]     check DIR (default: the checkout this script is in)
       check_layering.py --print-order   print the parsed order, one layer per line
"""
import argparse
import os
import re
import sys

SCANNED = ("mtl", "heads", "backbones", "tools")
SOURCE_SUFFIXES = (".h", ".hpp", ".cpp", ".cc")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


class LayeringError(Exception):
    pass


def read_order(readme_path):
    """The layers from README's Layout section: a list of lists of entries, bottom first."""
    try:
        with open(readme_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise LayeringError(f"{readme_path}: cannot read ({e.strerror})")
    section = None
    for i, line in enumerate(lines):
        if line.strip() == "## Layout":
            section = i
            break
    if section is None:
        raise LayeringError(f"{readme_path}: no '## Layout' section")
    marker = None
    for i in range(section + 1, len(lines)):
        if lines[i].startswith("## "):
            break
        if lines[i].startswith("**Layering.**"):
            marker = i
            break
    if marker is None:
        raise LayeringError(f"{readme_path}: the Layout section has no paragraph starting with '**Layering.**'")
    block = []
    i = marker + 1
    while i < len(lines) and not lines[i].startswith("    "):
        if lines[i].startswith("#"):
            break
        i += 1
    while i < len(lines) and lines[i].startswith("    "):
        block.append(lines[i].strip())
        i += 1
    if not block:
        raise LayeringError(f"{readme_path}:{marker + 1}: the Layering paragraph has no indented order block")
    layers = [[e.strip().rstrip("/") for e in part.split(",") if e.strip()] for part in " ".join(block).split("<")]
    if any(not layer for layer in layers):
        raise LayeringError(f"{readme_path}:{marker + 1}: empty entry in the layer order")
    seen = set()
    for layer in layers:
        for entry in layer:
            if entry in seen:
                raise LayeringError(f"{readme_path}:{marker + 1}: '{entry}' appears twice in the layer order")
            seen.add(entry)
    return layers


def layer_of(path, layers):
    """Index of the layer that holds `path` (relative, '/'-separated), or None."""
    best, best_len = None, -1
    for index, layer in enumerate(layers):
        for entry in layer:
            if (path == entry or path.startswith(entry + "/")) and len(entry) > best_len:
                best, best_len = index, len(entry)
    return best


def layer_name(layers, index):
    return ", ".join(layers[index])


def source_files(root):
    for top in SCANNED:
        for folder, dirs, files in os.walk(os.path.join(root, top)):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(SOURCE_SUFFIXES):
                    yield os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")


def resolve_include(root, including, header):
    """Quoted includes are relative to the checkout root; a bare name may be a neighbour of the includer."""
    if os.path.exists(os.path.join(root, header)) or "/" in header:
        return os.path.normpath(header).replace(os.sep, "/")
    return os.path.normpath(os.path.join(os.path.dirname(including), header)).replace(os.sep, "/")


def check_file(root, rel, layers):
    """Violation lines for one source file."""
    own = layer_of(rel, layers)
    if own is None:
        return [f"{rel}:1: is in no layer (place its folder in README.md's Layering order)"]
    out = []
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            header = resolve_include(root, rel, m.group(1))
            theirs = layer_of(header, layers)
            if theirs is None:
                out.append(f"{rel}:{number}: includes {header} which is in no layer (place its folder in "
                           "README.md's Layering order)")
            elif theirs > own:
                out.append(f"{rel}:{number}: includes {header} (layer {layer_name(layers, theirs)}) "
                           f"from layer {layer_name(layers, own)}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--print-order", action="store_true")
    args = parser.parse_args()
    try:
        layers = read_order(os.path.join(args.root, "README.md"))
    except LayeringError as e:
        print(f"check_layering: {e}", file=sys.stderr)
        return 2
    if args.print_order:
        for layer in layers:
            print(", ".join(layer))
        return 0
    violations = []
    count = 0
    for rel in source_files(args.root):
        count += 1
        violations += check_file(args.root, rel, layers)
    for v in violations:
        print(v)
    if violations:
        print(f"check_layering: {len(violations)} violation(s) in {count} files", file=sys.stderr)
        return 1
    print(f"check_layering: {count} files, {len(layers)} layers, no upward includes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
