"""The validation engine: run a migration as a rolled-back dry-run, observe what it does to its
surroundings, and judge it.

``execute`` runs statements (parse and classify, the dry-run, the rehearsal outside the
transaction, tracing, residue); ``observe`` watches what other sessions and the replica go
through (sampler, traffic, long readers, plans); ``findings`` judges; ``validate`` orchestrates.
Talks to PostgreSQL only; never to Kubernetes.
"""
