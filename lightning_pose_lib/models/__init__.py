"""Models: backbone registry, heads, and the Lightning module that trains them."""
