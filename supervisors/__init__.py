"""Ready-to-run supervision trees: `mycelium-actors run supervisors.<module>:tree`."""
