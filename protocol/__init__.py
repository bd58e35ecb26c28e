"""StudyBuddy wire protocol: pure data types and codecs, no I/O.

Both the server and clients (load testers included) import this package.
"""
