"""Use cases. They own transactions and know nothing about HTTP or sockets."""
