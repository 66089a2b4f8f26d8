"""Retrieval of real dance to start sampling from (ours; see retrieval/bank.py)."""
