"""Models: backbone registry, heads, the network they make (network.py) and the Lightning module that trains it (pose_model.py)."""
