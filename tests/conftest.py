"""Settings every test needs before the package is imported (as Lambda sets them)."""

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "swapdrop")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Swapdrop")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
