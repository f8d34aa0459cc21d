"""Runnable code behind the snippets in docs/ (tests/test_doc_examples.py runs it)."""
