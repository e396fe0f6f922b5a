"""The PostgreSQL toolkit every other package uses: connections, the one way user SQL is sent,
the clone marker, local clusters, EXPLAIN plan shapes.

Talks to PostgreSQL only (psycopg, the server's binaries); knows nothing of schemas' meaning,
validations, seeding or Kubernetes.
"""
