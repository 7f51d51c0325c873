"""Accounts, journals, escrow, the Merkle log, proofs, verification."""
