"""The dashboard and HTTP API (`emugen web`): FastAPI over the same database the fleet writes.

May import everything below it (status, fleet and down); the lab sits beside it.
"""

# How often the server checks the database for a change to push: the mean push delay is half
# of it (docs/BENCHMARKS.md, `emugen bench sse`); the check reads one index (~0.5 ms).
POLL_INTERVAL_S = 0.05
# While the fleet's announcements arrive (Redis pub/sub), each commit wakes the server at once
# and the timed check is only a fallback for what nobody announces: it slows to this.
QUIET_POLL_S = 1.0
DEFAULT_FLOWER_URL = "http://127.0.0.1:5555"
