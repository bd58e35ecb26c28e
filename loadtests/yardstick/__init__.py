"""The yardstick of issue 11: StudyBuddy beside Go's centrifuge library, same client, same sitting.

``centrifuge_node/`` is our small Go main (built by ``build.sh`` against Debian's packaged
centrifuge at a pinned version); ``python -m loadtests.yardstick`` runs the scenarios of
``loadtests/fanout.py`` against both and prints them side by side.
"""
