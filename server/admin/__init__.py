"""Operator commands: ``python -m server.admin <command> ...``.

One module per command, each exposing ``add_parser`` and ``run``; ``__main__`` lists them.
"""
