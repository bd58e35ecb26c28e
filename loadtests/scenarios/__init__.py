"""Locust scenarios of StudyBuddy (run through ``loadtests/locustfile.py``).

``Chatter`` (talks on a socket), ``Listener`` (an idle socket), ``Student`` (the REST
journey) and ``LoginFlood`` (checks the auth limit still bites). The ``mixed`` shape of a
study evening is all four together, weighted: many idle sockets, few talkers, REST browsing.
"""
