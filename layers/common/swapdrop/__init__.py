"""Swapdrop's shared code: one module per concern, used by every Lambda in the stack.

Where to look:
- `layout`        the S3 layout rules (faces/, inbox/, results/) and job ids
- `jobs`          the job record
- `state_machine` the one place that decides how a job's status may change
- `job_store`     the only module that talks to DynamoDB
- `upstream`      the client of the swap API (submit, fetch, list-by-condition)
- `submission`, `snapshots`, `reconciler`  the three use cases behind the three handlers
"""
