"""Worker pools and worker processes: more than one actor (or core) behind one ref.

`pool.py` is `Pool`, a router that supervises interchangeable workers.
"""
