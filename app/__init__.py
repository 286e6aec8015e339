"""Créneau: SNP slots, SAS booking and médecin traitant queue for a CPTS."""
