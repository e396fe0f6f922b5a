"""The validation engine: local clusters, the rolled-back dry-run, tracing, digest, reports.

Talks to PostgreSQL only (psycopg); never to Kubernetes.
"""
