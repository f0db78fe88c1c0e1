"""Load benchmark: the running service, seeded with 10,000 referrals, under wrk (or httpx).

Run from the repository root (prints one JSON document on stdout, progress on stderr):

    .venv/bin/python bench/load.py --db sqlite --workers 2
    .venv/bin/python bench/load.py --db postgres --workers 4 \\
        --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/cbload   # its schema is dropped

What it does, in order: seeds a fresh database in-process through the service layer (the demo
network, then referrals moved along the lifecycle, with notes and their disclosure-log
entries); starts `casebridge serve --workers N` on a free loopback port with the bench-only
bare-read switch on; drives each scenario at each concurrency from a separate process (wrk
when installed, else an asyncio httpx client), every run bounded in time and request count
and stopping by itself with no request left in flight; samples the server's RSS; stops the
server (always); then counts disclosure responses against the log and runs
`casebridge audit verify --json`.

The work is done by the package beside this file, one concern per module: `loadbench.seed`,
`.server`, `.wrk` and `.httpx_driver`, `.rss`, `.proof`, `.report`, put together by
`.benchmark`; `loadbench.cli` holds the flags.
"""

from __future__ import annotations

import sys

from loadbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
