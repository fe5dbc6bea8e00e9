#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Start-up time of fresh processes: ``import astro_deepcr``, ``astro-deepcr --help``, ``astro-deepcr models``
and the first ``DeepCR(...).mask``, next to ``import ccdproc`` measured in the same run (issue #30)::

    python benchmarks/startup_time.py --repeat 11
    python benchmarks/startup_time.py --repeat 11 --before /path/to/old/checkout   # and the old tree too

Each command runs ``--repeat`` times in a new interpreter (``sys.executable``), interleaved so that a busy
machine slows every command alike; the table gives the median wall time of each and its ratio to
``import ccdproc``. ``--before TREE`` also runs every command with ``TREE`` first on ``PYTHONPATH`` (an
older checkout: ``git worktree add`` or ``git archive``), interleaved with the others. ``--json`` prints the
figures as one JSON line instead. The CLI commands run as the ``astro-deepcr`` console script does
(``from astro_deepcr.cli import main``).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

CLI = "import sys; from astro_deepcr.cli import main; sys.argv[0] = 'astro-deepcr'; sys.exit(main())"
FIRST_MASK = ("import numpy as np; from astro_deepcr import DeepCR; "
              "DeepCR('ACS-WFC', device='cpu', precision='float32', progress=False)"
              ".mask(np.random.default_rng(0).normal(60, 8, (256, 256)).astype('f4'))")

COMMANDS = {
    "import ccdproc": ["-c", "import ccdproc"],
    "import astro_deepcr": ["-c", "import astro_deepcr"],
    "astro-deepcr --help": ["-c", CLI, "--help"],
    "astro-deepcr clean --help": ["-c", CLI, "clean", "--help"],
    "astro-deepcr models": ["-c", CLI, "models"],
    "first DeepCR(...).mask": ["-c", FIRST_MASK],
}


def cpu_name():
    """The CPU model as the OS reports it (``/proc/cpuinfo`` on Linux)."""
    from astro_deepcr.bf16_check import cpu_name as name

    return name()


def time_once(arguments, pythonpath=None):
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - start


def measure(commands, repeat):
    """Median wall time in seconds of each command over ``repeat`` fresh processes (round-robin order).

    ``commands`` maps a name to ``(arguments, pythonpath)``.
    """
    times = {name: [] for name in commands}
    for name in commands:  # one unmeasured run each: file-system caches warm for all alike
        time_once(*commands[name])
    for _ in range(repeat):
        for name, command in commands.items():
            times[name].append(time_once(*command))
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("::")[0])
    parser.add_argument("--repeat", type=int, default=11, help="fresh processes per command (default 11)")
    parser.add_argument("--only", nargs="+", choices=list(COMMANDS), metavar="NAME",
                        help="measure only these commands ('import ccdproc' is always measured)")
    parser.add_argument("--before", metavar="TREE", help="also time each command with this source tree first on "
                                                          "PYTHONPATH (rows marked 'before')")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    args = parser.parse_args(argv)
    names = ["import ccdproc"] + [name for name in COMMANDS if name != "import ccdproc"
                                  and (args.only is None or name in args.only)]
    commands = {}
    for name in names:
        commands[name] = (COMMANDS[name], None)
        if args.before and name != "import ccdproc":
            commands[f"{name} (before)"] = (COMMANDS[name], os.path.abspath(args.before))
    medians = measure(commands, args.repeat)
    reference = medians["import ccdproc"]
    if args.json:
        print(json.dumps({"cpu": cpu_name(), "repeat": args.repeat, "medians_s": medians,
                          "ratio_to_ccdproc": {name: value / reference for name, value in medians.items()}}))
        return 0
    print(f"{cpu_name()}, {args.repeat} fresh processes per command, Python {platform.python_version()}")
    print(f"{'command':<37} {'median s':>9} {'x ccdproc':>10}")
    for name, value in medians.items():
        print(f"{name:<37} {value:9.3f} {value / reference:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
