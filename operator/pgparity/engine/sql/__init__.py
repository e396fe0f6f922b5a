"""The SQL of a migration, parsed with PostgreSQL's own grammar (pglast) and classified: where
each statement may run, what it would do that ROLLBACK cannot undo, what a DO block runs.

Pure: no connection. Execution and observation both read user SQL through it.
"""
