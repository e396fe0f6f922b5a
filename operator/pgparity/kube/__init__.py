"""Kubernetes I/O: the only package that calls the API server. Never talks to PostgreSQL."""
