"""What several use cases need: errors, the closing kit, market precision, optimistic retries, views.

Imports no use case.
"""
