"""The local stack: the service from template.yaml on moto, in one process (see README.md)."""
