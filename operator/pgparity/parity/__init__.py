"""Parity checks: does the clone look like production where it matters for migrations?"""
