"""One module per schema revision, oldest first.

0001 is the schema of commit 56aa053, the last made without migrations.
"""
