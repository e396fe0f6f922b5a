"""Anonymized seeding: production data into a clone at full scale, masked inside the source.

Talks to PostgreSQL only (psycopg, pg_dump, psql); never to Kubernetes.
"""
