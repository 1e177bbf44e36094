#!/usr/bin/python3
"""Self-test of tools/check_layering.py on tiny temporary trees: an upward include, a header from a folder that is
in no layer and a file in no layer must each fail with the expected line; a tree that keeps the order must pass.
Run by ctest as `layering.self_test`; exit status 0 when every case behaves."""
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "check_layering.py")

README = """# fixture

## Layout

Text before.

**Layering.** Bottom to top:

    mtl/core < mtl/io < mtl/data
      < mtl/mtl.h, mtl/pch.h < tools

Text after.

## Next section

    not < the < order
"""

GOOD_FILES = {
    "mtl/core/a.h": "#pragma once\n",
    "mtl/io/b.h": '#pragma once\n#include "mtl/core/a.h"\n#include <vector>\n',
    "mtl/data/text/c.cpp": '#include "mtl/io/b.h"\n#include "mtl/data/text/c.h"\n',
    "mtl/data/text/c.h": '#include "mtl/core/a.h"\n',
    "mtl/mtl.h": '#include "mtl/data/text/c.h"\n',
    "tools/main.cpp": '#include "mtl/mtl.h"\n',
    "tests/anything_test.cpp": '#include "tools/whatever.h"\n',  # tests/ is not checked
}

failures = []


def run_case(name, extra_files, expected_code, expected_lines):
    with tempfile.TemporaryDirectory(prefix="layering_") as root:
        files = dict(GOOD_FILES)
        files.update(extra_files)
        files["README.md"] = README
        for rel, text in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        r = subprocess.run([sys.executable, SCRIPT, "--root", root], capture_output=True, text=True)
    got = [line for line in r.stdout.split("\n") if line and not line.startswith("check_layering:")]
    if r.returncode != expected_code or got != expected_lines:
        failures.append(f"{name}: expected exit {expected_code} and lines {expected_lines}, "
                        f"got exit {r.returncode} and lines {got} (stderr: {r.stderr.strip()})")


run_case("ordered tree passes", {}, 0, [])
run_case("upward include", {"mtl/core/bad.h": '#pragma once\n\n#include "mtl/io/b.h"\n'}, 1,
         ["mtl/core/bad.h:3: includes mtl/io/b.h (layer mtl/io) from layer mtl/core"])
run_case("subfolder counts as its parent", {"mtl/io/d.cpp": '#include "mtl/data/text/c.h"\n'}, 1,
         ["mtl/io/d.cpp:1: includes mtl/data/text/c.h (layer mtl/data) from layer mtl/io"])
run_case("aggregator above a folder", {"mtl/data/e.h": '#include "mtl/pch.h"\n'}, 1,
         ["mtl/data/e.h:1: includes mtl/pch.h (layer mtl/mtl.h, mtl/pch.h) from layer mtl/data"])
run_case("header from a folder in no layer", {"mtl/io/f.h": '// x\n#include "mtl/newthing/g.h"\n'}, 1,
         ["mtl/io/f.h:2: includes mtl/newthing/g.h which is in no layer (place its folder in README.md's "
          "Layering order)"])
run_case("file in no layer", {"heads/h.h": "#pragma once\n"}, 1,
         ["heads/h.h:1: is in no layer (place its folder in README.md's Layering order)"])

# The order comes from the README only: without the Layering block the check refuses to run.
with tempfile.TemporaryDirectory(prefix="layering_") as root:
    with open(os.path.join(root, "README.md"), "w") as f:
        f.write("# fixture\n\n## Layout\n\nNo order here.\n")
    r = subprocess.run([sys.executable, SCRIPT, "--root", root], capture_output=True, text=True)
    if r.returncode != 2 or "no paragraph starting with '**Layering.**'" not in r.stderr:
        failures.append(f"missing order: expected exit 2 and a message, got {r.returncode}: {r.stderr.strip()}")

# The real README's order parses, with core at the bottom, tools at the top and the run folder above the engine.
r = subprocess.run([sys.executable, SCRIPT, "--print-order"], capture_output=True, text=True)
order = r.stdout.split("\n")
if r.returncode != 0 or order[0] != "mtl/core" or order[-2] != "tools" or \
        "mtl/run" not in order or order.index("mtl/run") < order.index("mtl/engine"):
    failures.append(f"README order: unexpected {order} (exit {r.returncode}, {r.stderr.strip()})")

for f in failures:
    print("FAIL", f)
print(f"check_layering self-test: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
