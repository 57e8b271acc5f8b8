"""Swapdrop on one machine: moto's server for AWS, plus the pieces Lambda would provide
(an SQS event source, an API Gateway HTTP adapter, a schedule), driving the real handlers."""
