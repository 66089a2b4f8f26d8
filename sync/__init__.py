"""Clean-up steps applied to a sampled dance after the network (foot locking)."""
