"""Unmet SNP demand: what SAS regulators could not place, the gap map and its figures."""
