"""Run `farside-gan` commands in-process, one per argument list in the rule's `params.commands`.

Used where a rule runs many commands (a fetch batch: every channel and time of a month) or
names more files than a shell command line holds (the manifest of a 7-year run names ~30,000
files; Linux caps a command line at ~2 MB). One process pays the imports once. Output goes to
the rule's log; the first failing command fails the job.
"""

import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1]))  # noqa: F821 (the checkout)

from farside_gan.cli import main  # noqa: E402

commands = [[str(arg) for arg in argv] for argv in snakemake.params.commands]  # noqa: F821
log_path = snakemake.log[0]  # noqa: F821
failed = None
with open(log_path, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
    for argv in commands:
        shown = " ".join(argv[:14]) + (f" ... ({len(argv)} arguments)" if len(argv) > 14 else "")
        print(f"$ farside-gan {shown}", flush=True)
        code = main(argv)
        if code:
            failed = (argv[0], code)
            break
if failed:
    sys.exit(f"farside-gan {failed[0]} failed with exit code {failed[1]}; see {log_path}")
