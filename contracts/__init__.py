"""Message contracts shared across processes: YAML sources and their generated modules.

Edit a `.yaml` file, then run `mycelium-actors contracts build contracts`.
"""
