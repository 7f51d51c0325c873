"""Participants (vendors, buyers, operators, regulators) and their API keys."""
