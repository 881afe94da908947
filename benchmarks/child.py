"""Run one ``int4rt`` command line, then print this process's peak RSS (KiB) to stderr.

``python -m benchmarks.child transcribe MODEL AUDIO ...``: the cold-start and memory probe.
"""

from __future__ import annotations

import json
import resource
import sys

from int4rt.cli import main

if __name__ == "__main__":
    code = main(sys.argv[1:])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_kib": peak}), file=sys.stderr)
    sys.exit(code)
