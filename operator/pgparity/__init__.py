"""pgparity: staging that predicts production for PostgreSQL schema migrations."""

__version__ = "0.1.0"
