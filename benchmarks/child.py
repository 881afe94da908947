"""Run one ``int4rt`` command line, then print this process's peak RSS (KiB) to stderr.

``python -m benchmarks.child transcribe MODEL AUDIO ...``: the cold-start and memory probe.
The peak is ``VmHWM`` of /proc/self/status, which starts afresh at exec; ``ru_maxrss`` would
report the parent's peak when the parent (the benchmark runner) was larger.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from int4rt.cli import main

if __name__ == "__main__":
    code = main(sys.argv[1:])
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    hwm = [int(line.split()[1]) for line in lines if line.startswith("VmHWM:")]
    peak = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_kib": peak}), file=sys.stderr)
    sys.exit(code)
