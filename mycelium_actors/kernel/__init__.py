"""One process: actors, refs, mailboxes, serving, the system (the bottom layer).

Imports only `errors` and `logs`; what it asks of the layers above is `seams.py`.
"""
