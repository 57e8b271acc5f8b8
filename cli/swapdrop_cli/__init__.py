"""`swapdrop`: the command line for a deployed or local Swapdrop stack (faces, swaps, jobs, operations).

It runs on Python 3.10 and later and needs only boto3, botocore, requests and rich; from the
stack's own code it imports `swapdrop.layout` (pure standard library) and nothing else.
"""

__version__ = "0.1.0"
