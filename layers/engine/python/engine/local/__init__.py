"""The local runtime (`make run`): moto, the real handlers over HTTP, a stream pump and a scheduler.

Development only: excluded from the Lambda layer asset.
"""
