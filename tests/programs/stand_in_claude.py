"""A stand-in for the `claude` process: runs a hook command the way Claude Code
does (through `sh -c`, the payload on stdin) for each fixture payload given, with
the session id replaced, then says "ready" and waits to be killed.

usage: stand_in_claude.py HOOK_COMMAND SESSION_ID FIXTURE.json...
"""

import json
import subprocess
import sys
import time

hook, session, fixtures = sys.argv[1], sys.argv[2], sys.argv[3:]
for path in fixtures:
    with open(path, encoding="utf-8") as f:
        payload = json.load(f)
    payload["session_id"] = session
    done = subprocess.run(
        ["sh", "-c", hook],
        input=json.dumps(payload).encode(),
        stdout=subprocess.PIPE,
        timeout=30,
    )
    if done.returncode != 0 or done.stdout:
        print(f"hook exited {done.returncode}, stdout {done.stdout!r}", flush=True)
        sys.exit(1)
print("ready", flush=True)
time.sleep(600)
