"""A database's schema: the catalog snapshot, its digest, the difference between two snapshots,
and the plan that turns one back into the other (compensation).

Reads the catalog through ``pgparity.pg``; planning is pure.
"""
