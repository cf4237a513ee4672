"""L1 settlement: the merkle commitment, settlement rows, leadership, the strategy host."""
