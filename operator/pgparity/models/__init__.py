"""Typed, frozen models: CRD specs and status, the validation report, quantities. No I/O."""
