"""Pure, synchronous, I/O-free domain logic."""
